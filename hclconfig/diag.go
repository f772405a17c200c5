package hclconfig

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// diagWidth 0 leaves the detail text unwrapped: details quote absolute
// paths, and wrapping them would make the output depend on where the
// config lives. Terminals wrap long lines anyway.
const diagWidth = 0

// WriteDiagnostics writes diags with HCL's text writer: a summary, the
// source snippet and the detail of each. The location line reads
// "on file:line:col" so editors and CI logs can jump to it.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	for _, diag := range diags {
		var buf bytes.Buffer
		if err := hcl.NewDiagnosticTextWriter(&buf, files, diagWidth, color).WriteDiagnostic(diag); err != nil {
			return fmt.Errorf("write diagnostic: %w", err)
		}
		out := buf.Bytes()
		if s := diag.Subject; s != nil {
			// The text writer says "on server.hcl line 3"; a column is
			// worth having, and the line is the writer's own, so an
			// unexpected shape is left as it is.
			from := fmt.Sprintf("  on %s line %d", s.Filename, s.Start.Line)
			to := fmt.Sprintf("  on %s:%d:%d", s.Filename, s.Start.Line, s.Start.Column)
			out = bytes.Replace(out, []byte(from), []byte(to), 1)
		}
		if _, err := w.Write(out); err != nil {
			return fmt.Errorf("write diagnostic: %w", err)
		}
	}
	return nil
}

// sortDiagnostics orders diagnostics as they appear in the file, so the
// output reads top to bottom; those without a subject go last.
func sortDiagnostics(diags hcl.Diagnostics) {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return 1
		case b.Subject == nil:
			return -1
		}
		return cmp.Or(
			strings.Compare(a.Subject.Filename, b.Subject.Filename),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte),
		)
	})
}

func quote(s string) string { return strconv.Quote(s) }

// orList renders ["a", "b", "c"] as `"a", "b" or "c"`.
func orList[T any](vs []T) string {
	var b strings.Builder
	for i, v := range vs {
		switch {
		case i == 0:
		case i == len(vs)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		if s, ok := any(v).(string); ok {
			b.WriteString(strconv.Quote(s))
		} else {
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

// article puts "a" or "an" before a class name: "an async listener".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func contains[T comparable](vs []T, v T) bool { return slices.Contains(vs, v) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
