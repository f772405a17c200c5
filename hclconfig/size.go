package hclconfig

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// sizeUnits are the suffixes a size string may carry. Both the binary
// (KiB) and the decimal (KB) spellings mean powers of 1024, as nginx's
// "1m" does: an operator who writes "1MB" for a body limit means a
// megabyte of upload, and nobody means 1,000,000 exactly.
var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
	{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10},
	{"B", 1},
}

var errSizeSyntax = errors.New("not a size")

// parseSize parses "100MiB", "64 KiB", "512K" or "4096" (bytes).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			mult = u.n
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: %w", s, errSizeSyntax)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

// formatSize prints n the way an operator writes it: "1MiB" when a binary
// unit divides it exactly, else the plain number of bytes.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// sizeHCL prints a size with a unit as a string and a plain number of
// bytes as a number.
func sizeHCL(n int64) string {
	s := formatSize(n)
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return s
	}
	return quoteHCL(s)
}

// size sets *dst from attrs[name]: a whole number of bytes, or a string
// with a unit like "1MiB". max bounds it.
func (d *decoder) size(attrs hcl.Attributes, name string, max int64, dst *int64) bool {
	attr, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.eval(attr, cty.DynamicPseudoType, "")
	if !ok {
		return false
	}
	rng := attr.Expr.Range()
	var n int64
	switch v.Type() {
	case cty.Number:
		bf := v.AsBigFloat()
		i, acc := bf.Int64()
		if !bf.IsInt() || acc != big.Exact || i < 0 {
			d.errorf(rng, "Invalid size", "%s is not a size: use a whole number of bytes, or a string like \"64KiB\" or \"100MiB\".", bf.Text('f', -1))
			return false
		}
		n = i
	case cty.String:
		var err error
		if n, err = parseSize(v.AsString()); err != nil {
			d.errorf(rng, "Invalid size", "%q is not a size: write a number of bytes with an optional unit (KiB, MiB, GiB), like \"64KiB\" or \"100MiB\".", v.AsString())
			return false
		}
	default:
		d.typeError(attr, `a size, like "1MiB" or 4096,`)
		return false
	}
	if n > max {
		d.errorf(rng, "Size out of range", "%s is more than %s allows (%s).", formatSize(n), name, formatSize(max))
		return false
	}
	*dst = n
	return true
}
