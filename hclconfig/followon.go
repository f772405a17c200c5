package hclconfig

import "github.com/hashicorp/hcl/v2"

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

// trimSyntaxFollowOns replaces an unterminated string's diagnostics (one
// "Invalid multi-line string" per line it ran over, then "Unterminated
// template string") with one, pointing at the opening quote.
func trimSyntaxFollowOns(diags hcl.Diagnostics) hcl.Diagnostics {
	var open *hcl.Diagnostic
	for _, d := range diags {
		if d.Summary == summaryUnterminatedString && d.Context != nil {
			open = d
			break
		}
	}
	if open == nil {
		return diags
	}
	start := open.Context.Start
	quote := hcl.Range{Filename: open.Context.Filename, Start: start, End: hcl.Pos{Line: start.Line, Column: start.Column + 1, Byte: start.Byte + 1}}
	var out hcl.Diagnostics
	for _, d := range diags {
		switch {
		case d == open:
			out = append(out, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unclosed quote",
				Detail:   "The string that starts here has no closing quote on its line, so the rest of the file was read as part of it. Close the string with \".",
				Subject:  &quote,
			})
		case d.Summary == summaryMultiLineString && d.Subject != nil && d.Subject.Start.Byte >= start.Byte:
			// a line the unclosed string swallowed
		default:
			out = append(out, d)
		}
	}
	return out
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
