package hclconfig

import "testing"

// TestLocatorAttr: a setting is found through its blocks by type and
// labels; a default (not written) points at the innermost block found.
func TestLocatorAttr(t *testing.T) {
	src := `pidfile = "a.pid"
listener "web" {
  bind = ":8080"
  route "/static/" {
    static { root = "testdata" }
  }
}
`
	_, files, diags := Parse("server.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	loc := newLocator(files)
	for _, c := range []struct {
		name      string
		path      []block
		line, col int
	}{
		{"pidfile", nil, 1, 11},
		{"bind", []block{{"listener", "web"}}, 3, 10},
		{"root", []block{{"listener", "web"}, {"route", "/static/"}, {"static"}}, 5, 21},
		{"index", []block{{"listener", "web"}, {"route", "/static/"}, {"static"}}, 5, 5},
		{"file", []block{{"listener", "web"}, {"access_log"}}, 2, 1},
		{"bind", []block{{"listener", "other"}}, 1, 1},
	} {
		r := loc.attr(c.name, c.path...)
		if r.Start.Line != c.line || r.Start.Column != c.col || r.Filename != "server.hcl" {
			t.Errorf("attr(%q, %v) at %s:%d:%d, want server.hcl:%d:%d", c.name, c.path, r.Filename, r.Start.Line, r.Start.Column, c.line, c.col)
		}
	}
}
