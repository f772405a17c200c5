package hclconfig

import (
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// defaultHidden hides dotfiles and dot-directories (.git, .env, .htpasswd);
// "/.well-known/" at the top of a root is served whatever hidden says.
var defaultHidden = []string{".*"}

// maxErrorPage bounds an error page: workers keep each in memory.
const maxErrorPage = 1 << 20

func (d *decoder) static(attrs hcl.Attributes, r *Route) {
	r.Static = Static{Index: []string{"index.html"}, Hidden: defaultHidden}
	if d.str(attrs, "root", &r.Static.Root) {
		r.Static.Root = d.path(r.Static.Root)
		d.checkDir(attrs["root"].Expr.Range(), "root", r.Static.Root)
	}
	if list, rngs, ok := d.strList(attrs, "index", true); ok {
		r.Static.Index = nil
		for i, n := range list {
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
				d.errorf(rngs[i], "Invalid index", "index names a file in each directory, like \"index.html\"; %q is not a file name.", n)
				continue
			}
			r.Static.Index = append(r.Static.Index, n)
		}
	}
	if d.str(attrs, "fallback", &r.Static.Fallback) {
		f := strings.TrimPrefix(r.Static.Fallback, "/")
		if f == "" || strings.ContainsAny(f, "\\\x00") || path.Clean(f) != f || f == ".." || strings.HasPrefix(f, "../") {
			d.errorf(attrs["fallback"].Expr.Range(), "Invalid fallback", "fallback names a file under the root, like \"index.html\" or \"app/index.html\"; %q is not one.", r.Static.Fallback)
		}
		r.Static.Fallback = f
	}
	d.boolean(attrs, "precompressed", &r.Static.Precompressed)
	if list, rngs, ok := d.strList(attrs, "hidden", true); ok {
		r.Static.Hidden = nil
		for i, p := range list {
			if _, err := path.Match(p, ""); err != nil || p == "" || strings.Contains(p, "/") {
				d.errorf(rngs[i], "Invalid hidden pattern", "%q is not a pattern for one path segment, like \".*\" or \"*.bak\".", p)
				continue
			}
			r.Static.Hidden = append(r.Static.Hidden, p)
		}
	}
}

// errorPages decodes an error_pages attribute: status codes to files,
// read and checked now so a worker never starts without its page.
func (d *decoder) errorPages(attrs hcl.Attributes) map[int]string {
	m, ok := d.strMap(attrs, "error_pages")
	if !ok || len(m) == 0 {
		return nil
	}
	rng := attrs["error_pages"].Expr.Range()
	pages := map[int]string{}
	for _, k := range sortedKeys(m) {
		code, err := strconv.Atoi(k)
		if err != nil || code < 400 || code > 599 {
			d.errorf(rng, "Invalid error page status", "%q is not an error status; error_pages maps codes from 400 to 599 to files, like { 404 = \"404.html\" }.", k)
			continue
		}
		p := d.path(m[k])
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			d.errorf(rng, "Missing error page", "The page for %d, %q, cannot be read: %v.", code, p, err)
			continue
		case !fi.Mode().IsRegular():
			d.errorf(rng, "Error page is not a file", "The page for %d, %q, is not a regular file.", code, p)
			continue
		case fi.Size() > maxErrorPage:
			d.errorf(rng, "Error page too large", "The page for %d, %q, is %d bytes; workers keep error pages in memory, up to 1MiB each.", code, p, fi.Size())
			continue
		}
		pages[code] = p
	}
	return pages
}

func formatErrorPages(b *body, pages map[int]string) {
	if len(pages) == 0 {
		return
	}
	m := map[string]string{}
	for code, p := range pages {
		m[strconv.Itoa(code)] = p
	}
	b.attr("error_pages", mapHCL(m))
}
