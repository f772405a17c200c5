package hclconfig

import (
	"fmt"
	"math"
	"math/big"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// evalContext offers functions only: a config has no variables, so every
// expression evaluates to a known value and a reload sees what -t saw
// (apart from env(), which reads the master's environment at parse time).
func evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env": envFunc,

		"upper":      stdlib.UpperFunc,
		"lower":      stdlib.LowerFunc,
		"title":      stdlib.TitleFunc,
		"trim":       stdlib.TrimFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"chomp":      stdlib.ChompFunc,
		"indent":     stdlib.IndentFunc,
		"format":     stdlib.FormatFunc,
		"formatlist": stdlib.FormatListFunc,
		"join":       stdlib.JoinFunc,
		"split":      stdlib.SplitFunc,
		"replace":    stdlib.ReplaceFunc,
		"regex":      stdlib.RegexFunc,
		"substr":     stdlib.SubstrFunc,
		"strlen":     stdlib.StrlenFunc,
		"length":     stdlib.LengthFunc,
		"concat":     stdlib.ConcatFunc,
		"coalesce":   coalesceFunc,
		"contains":   stdlib.ContainsFunc,
		"lookup":     stdlib.LookupFunc,
		"merge":      stdlib.MergeFunc,
		"keys":       stdlib.KeysFunc,
		"values":     stdlib.ValuesFunc,
		"min":        stdlib.MinFunc,
		"max":        stdlib.MaxFunc,
		"abs":        stdlib.AbsoluteFunc,
		"ceil":       stdlib.CeilFunc,
		"floor":      stdlib.FloorFunc,
		"parseint":   stdlib.ParseIntFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"tostring":   stdlib.MakeToFunc(cty.String),
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"tobool":     stdlib.MakeToFunc(cty.Bool),
		"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":      stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
	}}
}

// envFunc is env("NAME"): the variable's value, or "" when it is unset, so a
// config can offer a default with coalesce(env("PORT"), "8080").
var envFunc = function.New(&function.Spec{
	Description: `Returns the value of an environment variable, or "" when it is unset.`,
	Params: []function.Parameter{{
		Name: "name",
		// DynamicPseudoType, so a number is refused instead of being
		// silently converted to a string.
		Type: cty.DynamicPseudoType,
	}},
	Type: func(args []cty.Value) (cty.Type, error) {
		if ty := args[0].Type(); ty != cty.String {
			return cty.NilType, function.NewArgErrorf(0, "env takes the variable's name as a string, like env(\"PORT\"); got %s", ty.FriendlyName())
		}
		return cty.String, nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(os.Getenv(args[0].AsString())), nil
	},
})

// coalesceFunc returns its first argument that is neither null nor "", as
// Terraform's does: cty's own skips only nulls, and env() of an unset
// variable is "", so coalesce(env("PORT"), "8080") needs the empty check.
var coalesceFunc = function.New(&function.Spec{
	Description: `Returns the first argument that is neither null nor "".`,
	VarParam: &function.Parameter{
		Name:      "vals",
		Type:      cty.DynamicPseudoType,
		AllowNull: true,
	},
	Type: func(args []cty.Value) (cty.Type, error) {
		types := make([]cty.Type, len(args))
		for i, v := range args {
			types[i] = v.Type()
		}
		ty, _ := convert.UnifyUnsafe(types)
		if ty == cty.NilType {
			return cty.NilType, fmt.Errorf("all arguments must have the same type")
		}
		return ty, nil
	},
	Impl: func(args []cty.Value, ty cty.Type) (cty.Value, error) {
		for _, v := range args {
			if v.IsNull() {
				continue
			}
			cv, err := convert.Convert(v, ty)
			if err != nil {
				return cty.NilVal, err
			}
			if ty == cty.String && cv.AsString() == "" {
				continue
			}
			return cv, nil
		}
		return cty.NilVal, fmt.Errorf("no argument is set: all are null or empty strings")
	},
})

// eval evaluates attr and converts it to ty. ok is false when the value is
// null (treated as not set) or wrong, in which case a diagnostic is added.
func (d *decoder) eval(attr *hcl.Attribute, ty cty.Type, what string) (cty.Value, bool) {
	v, diags := attr.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, false
	}
	if ty == cty.DynamicPseudoType {
		return v, true
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.typeError(attr, what)
		return cty.NilVal, false
	}
	return cv, true
}

func (d *decoder) typeError(attr *hcl.Attribute, what string) {
	d.errorf(attr.Expr.Range(), "Incorrect attribute value type",
		"Inappropriate value for argument %q: %s is required.", attr.Name, what)
}

// str sets *dst from attrs[name] when it is set to a string.
func (d *decoder) str(attrs hcl.Attributes, name string, dst *string) bool {
	attr, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.eval(attr, cty.String, "a string")
	if ok {
		*dst = v.AsString()
	}
	return ok
}

// boolean sets *dst from attrs[name] when it is set to a bool.
func (d *decoder) boolean(attrs hcl.Attributes, name string, dst *bool) bool {
	attr, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.eval(attr, cty.Bool, "a bool")
	if ok {
		*dst = v.True()
	}
	return ok
}

// integer sets *dst from attrs[name] when it is set to a whole number.
func (d *decoder) integer(attrs hcl.Attributes, name string, dst *int) bool {
	attr, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.eval(attr, cty.Number, "a whole number")
	if !ok {
		return false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() || bf.IsInf() {
		d.typeError(attr, "a whole number")
		return false
	}
	n, acc := bf.Int64()
	if acc != big.Exact || n > math.MaxInt32 || n < math.MinInt32 {
		d.errorf(attr.Expr.Range(), "Number out of range", "%s is too large for %q.", bf.Text('f', -1), name)
		return false
	}
	*dst = int(n)
	return true
}

// strList accepts a list of strings and, when single is true, a lone
// string, because one bind or upstream is the common case (a command is
// not: "python3 app.py" would name a program with a space in it). It also
// returns each element's range where the expression is a literal list, so a
// diagnostic can point at one element.
func (d *decoder) strList(attrs hcl.Attributes, name string, single bool) ([]string, []hcl.Range, bool) {
	attr, ok := attrs[name]
	if !ok {
		return nil, nil, false
	}
	v, ok := d.eval(attr, cty.DynamicPseudoType, "")
	if !ok {
		return nil, nil, false
	}
	what := "a list of strings"
	if single {
		what = "a string or a list of strings"
	}
	if single && v.Type() == cty.String {
		return []string{v.AsString()}, []hcl.Range{attr.Expr.Range()}, true
	}
	if ty := v.Type(); !ty.IsListType() && !ty.IsTupleType() && !ty.IsSetType() {
		d.typeError(attr, what)
		return nil, nil, false
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || !lv.IsWhollyKnown() {
		d.typeError(attr, what)
		return nil, nil, false
	}
	var out []string
	for _, e := range lv.AsValueSlice() {
		if e.IsNull() {
			d.typeError(attr, what)
			return nil, nil, false
		}
		out = append(out, e.AsString())
	}
	return out, elemRanges(attr.Expr, len(out)), true
}

// elemRanges gives the range of each element of a literal list, or the
// whole expression's range for each when the list was computed.
func elemRanges(expr hcl.Expression, n int) []hcl.Range {
	rs := make([]hcl.Range, n)
	tuple, ok := expr.(*hclsyntax.TupleConsExpr)
	for i := range rs {
		if ok && len(tuple.Exprs) == n {
			rs[i] = tuple.Exprs[i].Range()
		} else {
			rs[i] = expr.Range()
		}
	}
	return rs
}

// strMap accepts a map or object whose values are strings.
func (d *decoder) strMap(attrs hcl.Attributes, name string) (map[string]string, bool) {
	attr, ok := attrs[name]
	if !ok {
		return nil, false
	}
	v, ok := d.eval(attr, cty.Map(cty.String), "a map of strings")
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for k, e := range v.AsValueMap() {
		if e.IsNull() {
			d.typeError(attr, "a map of strings")
			return nil, false
		}
		out[k] = e.AsString()
	}
	return out, true
}

func (d *decoder) errorf(subject hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	})
}

func (d *decoder) warnf(subject hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	})
}

// at renders a position the way HCL's own messages do ("server.hcl:3,1").
func at(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}
