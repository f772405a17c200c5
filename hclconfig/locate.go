package hclconfig

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// locator finds where a setting was written, so a check that runs on a
// decoded Config (CheckAccess) can still point at the line to fix.
type locator struct {
	body *hclsyntax.Body
	file string
}

// block names one block on the way to a setting: its type and labels.
type block []string

// newLocator reads the one file Parse parsed.
func newLocator(files map[string]*hcl.File) locator {
	for name, f := range files {
		if b, ok := f.Body.(*hclsyntax.Body); ok {
			return locator{body: b, file: name}
		}
	}
	return locator{}
}

// attr returns the range of the attribute name inside the nested blocks,
// or of the innermost block found on the way when the attribute is not
// written there (a default), or of the file's start.
func (l locator) attr(name string, path ...block) hcl.Range {
	if l.body == nil {
		return hcl.Range{}
	}
	body := l.body
	at := hcl.Range{Filename: l.file, Start: hcl.InitialPos, End: hcl.InitialPos}
	for _, want := range path {
		next := findBlock(body, want)
		if next == nil {
			return at
		}
		at = next.DefRange()
		body = next.Body
	}
	if a, ok := body.Attributes[name]; ok {
		return a.Expr.Range()
	}
	return at
}

func findBlock(body *hclsyntax.Body, want block) *hclsyntax.Block {
	for _, b := range body.Blocks {
		if b.Type != want[0] || len(b.Labels) != len(want)-1 {
			continue
		}
		match := true
		for i, lab := range b.Labels {
			if lab != want[i+1] {
				match = false
			}
		}
		if match {
			return b
		}
	}
	return nil
}
