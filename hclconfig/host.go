package hclconfig

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var hostSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "names", Required: true}, {Name: "error_pages"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "route", LabelNames: []string{"prefix"}},
		{Type: "headers"}, {Type: "compress"},
	},
}

// hostNameAt remembers where each host name of a listener was declared,
// so a second declaration can point at the first.
type hostNameAt map[string]hcl.Range

// hosts decodes a listener's host blocks in file order. A name may be
// declared once per listener; labels are unique too, as they name the
// host in logs.
func (d *decoder) hosts(blocks []*hcl.Block) []Host {
	var hosts []Host
	labels := map[string]hcl.Range{}
	names := hostNameAt{}
	for _, b := range blocks {
		h := Host{Label: b.Labels[0]}
		if h.Label == "" {
			d.errorf(b.LabelRanges[0], "Empty host label", "A host block needs a label to name it in logs, like host \"shop\" { ... }.")
		}
		if prev, dup := labels[h.Label]; dup {
			d.errorf(b.LabelRanges[0], "Duplicate host "+quote(h.Label), "Already declared at %s; host labels must be unique within a listener.", at(prev))
		} else {
			labels[h.Label] = b.LabelRanges[0]
		}
		content, unknown := d.content(b.Body, hostSchema)
		if list, rngs, ok := d.strList(content.Attributes, "names", true); ok {
			if len(list) == 0 {
				d.errorf(content.Attributes["names"].Expr.Range(), "No host name", "names needs at least one name, like \"shop.example.com\" or \"*.example.com\".")
			}
			for i, n := range list {
				norm, ok := normHostName(n)
				if !ok {
					d.errorf(rngs[i], "Invalid host name", "%q is not a host name: use an exact name like \"shop.example.com\" or a leading wildcard like \"*.example.com\", without a port.", n)
					continue
				}
				if prev, dup := names[norm]; dup {
					d.errorf(rngs[i], "Duplicate host name "+quote(norm), "Already declared at %s; each name may belong to one host of a listener.", at(prev))
					continue
				}
				names[norm] = rngs[i]
				h.Names = append(h.Names, norm)
			}
		}
		var routeBlocks []*hcl.Block
		for _, rb := range content.Blocks {
			if rb.Type == "route" {
				routeBlocks = append(routeBlocks, rb)
			}
		}
		h.Headers = d.headersBlock(content.Blocks, "host")
		h.ErrorPages = d.errorPages(content.Attributes)
		h.Compress = d.compressBlock(content.Blocks, "host")
		if len(routeBlocks) == 0 && !unknown {
			d.errorf(b.DefRange, "Host "+quote(h.Label)+" has no route", `A host serves its requests through its routes; add at least one, like route "/" { respond { body = "hello\n" } }.`)
		}
		h.Routes = d.routes(routeBlocks)
		hosts = append(hosts, h)
	}
	return hosts
}

// normHostName lower-cases a host name and checks its shape: letters,
// digits, '-', '.' and '_' (seen in the wild), or a leading "*." wildcard.
// A trailing dot is dropped, as a request's Host is matched without one.
func normHostName(n string) (string, bool) {
	n = strings.TrimSuffix(strings.ToLower(n), ".")
	rest := strings.TrimPrefix(n, "*.")
	if rest == "" || strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") || strings.Contains(rest, "..") {
		return "", false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", false
		}
	}
	return n, true
}
