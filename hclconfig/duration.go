package hclconfig

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// errNoUnit is returned for "30": seconds or milliseconds is a guess an
// operator should not have to make when reading the file.
var errNoUnit = errors.New("needs a unit")

// errNegative is returned for a duration below zero.
var errNegative = errors.New("negative")

// parseDuration parses a Go duration string. A bare number is refused
// (except zero, which reads the same in every unit), and so is a negative one.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f == 0 {
			return 0, nil
		}
		return 0, errNoUnit
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parse duration %q: %w", s, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q: %w", s, errNegative)
	}
	return d, nil
}

// formatDuration prints d the way an operator writes it: "30s", "250ms",
// "5m", "1h30m" (time.Duration.String would say "5m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// duration sets *dst from attrs[name], a string like "30s".
func (d *decoder) duration(attrs hcl.Attributes, name string, dst *time.Duration) bool {
	attr, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.eval(attr, cty.DynamicPseudoType, "")
	if !ok {
		return false
	}
	rng := attr.Expr.Range()
	switch v.Type() {
	case cty.Number:
		if v.AsBigFloat().Sign() == 0 {
			*dst = 0
			return true
		}
		d.errorf(rng, "Invalid duration", "%s needs a unit, like \"%ss\" for seconds or \"%sms\" for milliseconds.",
			v.AsBigFloat().Text('f', -1), v.AsBigFloat().Text('f', -1), v.AsBigFloat().Text('f', -1))
		return false
	case cty.String:
	default:
		d.typeError(attr, `a duration string, like "30s",`)
		return false
	}
	s := v.AsString()
	dur, err := parseDuration(s)
	switch {
	case errors.Is(err, errNoUnit):
		n := strings.TrimSpace(s)
		d.errorf(rng, "Invalid duration", "%q needs a unit, like \"%ss\" for seconds or \"%sms\" for milliseconds.", s, n, n)
		return false
	case errors.Is(err, errNegative):
		d.errorf(rng, "Invalid duration", "%q is negative; %s must be zero or more.", s, name)
		return false
	case err != nil:
		d.errorf(rng, "Invalid duration", "%q is not a duration: write a number and a unit (ns, us, ms, s, m, h), like \"250ms\", \"30s\" or \"1m30s\".", s)
		return false
	}
	*dst = dur
	return true
}
