package hclconfig

import (
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var routeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "error_pages"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: AppRespond}, {Type: AppStatic}, {Type: AppProxy}, {Type: AppRedirect}, {Type: AppStatus},
		{Type: "headers"}, {Type: "compress"},
	},
}

var appSchemas = map[string]*hcl.BodySchema{
	AppRespond: {Attributes: []hcl.AttributeSchema{{Name: "status"}, {Name: "body"}, {Name: "headers"}}},
	AppStatic: {Attributes: []hcl.AttributeSchema{
		{Name: "root", Required: true}, {Name: "index"}, {Name: "fallback"}, {Name: "hidden"}, {Name: "precompressed"},
	}},
	AppRedirect: {Attributes: []hcl.AttributeSchema{{Name: "to", Required: true}, {Name: "status"}}},
	AppStatus:   {},
}

var (
	appNames         = []string{AppRespond, AppStatic, AppProxy, AppRedirect, AppStatus}
	redirectStatuses = []int{301, 302, 303, 307, 308}
)

// routes decodes a listener's route blocks, longest prefix first so a
// worker can take the first match.
func (d *decoder) routes(blocks []*hcl.Block) []Route {
	var routes []Route
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		prefix, rng := b.Labels[0], b.LabelRanges[0]
		if !strings.HasPrefix(prefix, "/") {
			d.errorf(rng, "Invalid route prefix", "The route prefix %q must start with \"/\", like \"/\" or \"/api/\".", prefix)
		}
		if prev, dup := seen[prefix]; dup {
			d.errorf(rng, "Duplicate route "+quote(prefix), "Already declared at %s; each prefix may appear once per listener.", at(prev))
		} else {
			seen[prefix] = rng
		}
		routes = append(routes, d.route(b))
	}
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].Prefix) > len(routes[j].Prefix) })
	return routes
}

func (d *decoder) route(b *hcl.Block) Route {
	r := Route{Prefix: b.Labels[0]}
	content, unknown := d.content(b.Body, routeSchema)
	var first *hcl.Block
	r.Headers = d.headersBlock(content.Blocks, "route")
	r.ErrorPages = d.errorPages(content.Attributes)
	r.Compress = d.compressBlock(content.Blocks, "route")
	for _, app := range content.Blocks {
		if !contains(appNames, app.Type) {
			continue
		}
		if first != nil {
			d.errorf(app.DefRange, "Second app in route "+quote(r.Prefix), "This route already has a %s app at %s; a route holds exactly one of %s.", first.Type, at(first.DefRange), orList(appNames))
			continue
		}
		first = app
		r.App = app.Type
		d.app(app, &r)
	}
	if first == nil && !unknown {
		d.errorf(b.DefRange, "Route "+quote(r.Prefix)+" has no app", "Add one of %s inside the route, like respond { body = \"hello\\n\" }.", orList(appNames))
	}
	return r
}

func (d *decoder) app(b *hcl.Block, r *Route) {
	if b.Type == AppProxy {
		r.Proxy = d.proxy(b)
		return
	}
	content, _ := d.content(b.Body, appSchemas[b.Type])
	attrs := content.Attributes
	switch b.Type {
	case AppRespond:
		r.Respond = Respond{Status: 200}
		if d.integer(attrs, "status", &r.Respond.Status) && (r.Respond.Status < 100 || r.Respond.Status > 599) {
			d.errorf(attrs["status"].Expr.Range(), "Invalid status", "%d is not an HTTP status; use a code from 100 to 599.", r.Respond.Status)
		}
		d.str(attrs, "body", &r.Respond.Body)
		if h, ok := d.strMap(attrs, "headers"); ok {
			d.checkHeaders(attrs["headers"], h)
			if len(h) > 0 {
				r.Respond.Headers = h
			}
		}
	case AppStatic:
		d.static(attrs, r)
	case AppRedirect:
		r.Redirect = Redirect{Status: 302}
		if d.str(attrs, "to", &r.Redirect.To) && r.Redirect.To == "" {
			d.errorf(attrs["to"].Expr.Range(), "Empty redirect target", "to needs a path or URL, like \"/new/\" or \"https://example.com/\".")
		}
		if d.integer(attrs, "status", &r.Redirect.Status) && !contains(redirectStatuses, r.Redirect.Status) {
			d.errorf(attrs["status"].Expr.Range(), "Invalid redirect status", "%d is not a redirect status; use 301, 302, 303, 307 or 308.", r.Redirect.Status)
		}
	}
}

// checkHeaders refuses what would break the response: a name that is not
// an HTTP token, or a line break in a value.
func (d *decoder) checkHeaders(attr *hcl.Attribute, h map[string]string) {
	for _, k := range sortedKeys(h) {
		if !isToken(k) {
			d.errorf(attr.Expr.Range(), "Invalid header name", "%q cannot name an HTTP header.", k)
		}
		if strings.ContainsAny(h[k], "\r\n") {
			d.errorf(attr.Expr.Range(), "Invalid header value", "The value of %q holds a line break, which would end the header early.", k)
		}
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// checkDir reports a path that is not an existing directory now, rather
// than as a failing worker after a reload.
func (d *decoder) checkDir(rng hcl.Range, name, dir string) {
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		d.errorf(rng, "Missing directory", "%s %q does not exist.", name, dir)
	case err != nil:
		d.errorf(rng, "Unreadable directory", "%s %q cannot be read: %v.", name, dir, err)
	case !fi.IsDir():
		d.errorf(rng, "Not a directory", "%s %q is a file, not a directory.", name, dir)
	}
}
