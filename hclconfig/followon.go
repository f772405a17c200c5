package hclconfig

import (
	"bytes"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Follow-on errors: one mistake should read as one diagnostic. HCL's
// parser reports an unclosed quote once for every line the string then
// swallows, and a misspelt key leaves its block looking as if the
// intended setting were missing; both bury the one line to fix.

const (
	summaryUnsupportedArgument = "Unsupported argument"
	summaryUnsupportedBlock    = "Unsupported block type"
	summaryMissingArgument     = "Missing required argument"
	summaryUnterminatedString  = "Unterminated template string"
	summaryMultiLineString     = "Invalid multi-line string"
)

// trimSyntaxFollowOns turns an unclosed string's diagnostics (one
// "Invalid multi-line string" per line it ran over, often an "Unterminated
// template string", and whatever the parser made of the rest) into one,
// at the opening quote. Diagnostics before the quote are kept.
func trimSyntaxFollowOns(diags hcl.Diagnostics, src []byte) hcl.Diagnostics {
	var first *hcl.Diagnostic
	for _, d := range diags {
		if (d.Summary == summaryMultiLineString || d.Summary == summaryUnterminatedString) && d.Subject != nil &&
			(first == nil || d.Subject.Start.Byte < first.Subject.Start.Byte) {
			first = d
		}
	}
	if first == nil {
		return diags
	}
	quote, ok := openQuote(src, first.Subject.Start.Line)
	if !ok {
		return diags
	}
	quote.Filename = first.Subject.Filename
	out := hcl.Diagnostics{}
	for _, d := range diags {
		if d.Subject == nil || d.Subject.Start.Byte < quote.Start.Byte {
			out = append(out, d)
		}
	}
	return append(out, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Unclosed quote",
		Detail:   "The string that starts here has no closing quote on its line, so the rest of the file was read as part of it. Close the string with \".",
		Subject:  &quote,
	})
}

// openQuote finds the quote left open on line (1-based) of src: the last
// unescaped '"' that no later one on the line closes.
func openQuote(src []byte, line int) (hcl.Range, bool) {
	lineStart := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src[lineStart:], '\n')
		if i < 0 {
			return hcl.Range{}, false
		}
		lineStart += i + 1
	}
	open := -1
	for i := lineStart; i < len(src) && src[i] != '\n'; i++ {
		switch {
		case src[i] == '\\' && open >= 0:
			i++ // an escape inside a string
		case src[i] == '"' && open >= 0:
			open = -1
		case src[i] == '"':
			open = i
		case src[i] == '#' && open < 0:
			i = len(src) // a comment: the rest of the line is not code
		}
	}
	if open < 0 {
		return hcl.Range{}, false
	}
	col := utf8.RuneCount(src[lineStart:open]) + 1
	start := hcl.Pos{Line: line, Column: col, Byte: open}
	return hcl.Range{Start: start, End: hcl.Pos{Line: line, Column: col + 1, Byte: open + 1}}, true
}

// content decodes body against schema and reports whether the body holds
// a key the schema does not know. When it does, HCL's "Missing required
// argument" is dropped: the unknown key is most likely the required one,
// misspelt, and its own diagnostic already suggests the right name.
// Callers skip their own "missing setting" checks for the same reason.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, bool) {
	content, diags := body.Content(schema)
	unknown := false
	for _, diag := range diags {
		if diag.Summary == summaryUnsupportedArgument || diag.Summary == summaryUnsupportedBlock {
			unknown = true
		}
	}
	for _, diag := range diags {
		if unknown && diag.Summary == summaryMissingArgument {
			continue
		}
		d.diags = append(d.diags, diag)
	}
	return content, unknown
}
