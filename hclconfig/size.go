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

// sizeUnits are the suffixes a size string may carry, and they mean what
// they say: KB, MB and GB are powers of 1000 (SI), KiB, MiB and GiB powers
// of 1024 (IEC). A bare K, M or G is refused by parseSize: nginx reads
// "1m" as 1024*1024 bytes and a disk vendor as 10^6, so the operator is
// asked which was meant instead of hfork guessing.
var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

var (
	errSizeSyntax = errors.New("not a size")
	// errSizeAmbiguous: a bare K, M or G.
	errSizeAmbiguous = errors.New("ambiguous unit")
)

// parseSize parses "100MiB", "64 KiB", "10MB" or "4096" (bytes).
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
	if mult == 1 && len(t) > 1 && strings.ContainsRune("KkMmGg", rune(t[len(t)-1])) {
		if _, err := strconv.ParseUint(strings.TrimSpace(t[:len(t)-1]), 10, 64); err == nil {
			return 0, fmt.Errorf("size %q: %w", s, errSizeAmbiguous)
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

// formatSize prints n the way an operator writes it: with the largest
// unit that divides it exactly, else the plain number of bytes.
func formatSize(n int64) string {
	best := int64(1)
	suffix := ""
	for _, u := range sizeUnits {
		if n != 0 && n%u.n == 0 && u.n > best {
			best, suffix = u.n, u.suffix
		}
	}
	return strconv.FormatInt(n/best, 10) + suffix
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
		if n, err = parseSize(v.AsString()); errors.Is(err, errSizeAmbiguous) {
			num := strings.TrimSpace(v.AsString())
			num, unit := strings.TrimSpace(num[:len(num)-1]), strings.ToUpper(num[len(num)-1:])
			d.errorf(rng, "Ambiguous size unit", "%q could mean powers of 1024 or of 1000: write %q (%s × 2^%d bytes) or %q (%s × 10^%d bytes).",
				v.AsString(), num+unit+"iB", num, map[string]int{"K": 10, "M": 20, "G": 30}[unit], num+unit+"B", num, map[string]int{"K": 3, "M": 6, "G": 9}[unit])
			return false
		} else if err != nil {
			d.errorf(rng, "Invalid size", "%q is not a size: write a number of bytes with an optional unit (KiB, MiB, GiB are powers of 1024; KB, MB, GB powers of 1000), like \"64KiB\" or \"100MiB\".", v.AsString())
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
