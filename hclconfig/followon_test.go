package hclconfig

import (
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
)

// TestTrimSyntaxFollowOns: an unclosed quote is one diagnostic at the
// quote, however many lines follow; an error before it is kept.
func TestTrimSyntaxFollowOns(t *testing.T) {
	src := "a = 1 +\nb = \"open\nc = 1\nd = 2\ne = 3\n"
	_, raw := hclparse.NewParser().ParseHCL([]byte(src), "x.hcl")
	if len(raw) < 3 {
		t.Fatalf("HCL gave %d diagnostics for this input; the case no longer shows the follow-ons", len(raw))
	}
	got := trimSyntaxFollowOns(raw, []byte(src))
	var quote int
	for _, d := range got {
		if d.Summary == "Unclosed quote" {
			quote++
			if d.Subject.Start.Line != 2 || d.Subject.Start.Column != 5 {
				t.Errorf("Unclosed quote at %d:%d, want 2:5", d.Subject.Start.Line, d.Subject.Start.Column)
			}
		}
		if d.Summary == summaryMultiLineString || d.Summary == summaryUnterminatedString {
			t.Errorf("follow-on kept: %s at line %d", d.Summary, d.Subject.Start.Line)
		}
	}
	if quote != 1 {
		t.Errorf("%d Unclosed quote diagnostics, want 1: %v", quote, got)
	}
}
