package hclconfig

import (
	"net/textproto"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

var headersSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "set"}, {Name: "add"}, {Name: "remove"}},
}

// managedHeaders are the headers hfork writes itself to frame an answer
// (or, for Content-Encoding, to say how compress encoded it): a header
// policy may not touch them, as a wrong one would corrupt the stream.
var managedHeaders = []string{
	"Connection", "Content-Encoding", "Content-Length", "Date", "Keep-Alive",
	"Trailer", "Transfer-Encoding", "Upgrade",
}

// headersBlock decodes the one headers block among blocks, if any; where
// names the level for a duplicate's message.
func (d *decoder) headersBlock(blocks []*hcl.Block, where string) Headers {
	var h Headers
	var first *hcl.Block
	for _, b := range blocks {
		if b.Type != "headers" {
			continue
		}
		if first != nil {
			d.errorf(b.DefRange, "Duplicate headers block", "A headers block is already declared at %s; there can be only one per %s.", at(first.DefRange), where)
			continue
		}
		first = b
		h = d.headers(b)
	}
	return h
}

// headers decodes a headers block. Names come out canonical
// ("x-frame-options" is X-Frame-Options), so two spellings of one header
// are one.
func (d *decoder) headers(b *hcl.Block) Headers {
	content, _ := d.content(b.Body, headersSchema)
	attrs := content.Attributes
	var h Headers
	for _, name := range []string{"set", "add"} {
		m, ok := d.strMap(attrs, name)
		if !ok {
			continue
		}
		d.checkHeaders(attrs[name], m)
		d.checkManaged(attrs[name].Expr.Range(), sortedKeys(m))
		if len(m) == 0 {
			continue
		}
		canon := make(map[string]string, len(m))
		for k, v := range m {
			canon[textproto.CanonicalMIMEHeaderKey(k)] = v
		}
		if name == "set" {
			h.Set = canon
		} else {
			h.Add = canon
		}
	}
	if list, rngs, ok := d.strList(attrs, "remove", true); ok {
		for i, k := range list {
			if !isToken(k) {
				d.errorf(rngs[i], "Invalid header name", "%q cannot name an HTTP header.", k)
				continue
			}
			h.Remove = append(h.Remove, textproto.CanonicalMIMEHeaderKey(k))
		}
		d.checkManaged(attrs["remove"].Expr.Range(), h.Remove)
		sort.Strings(h.Remove)
	}
	return h
}

func (d *decoder) checkManaged(rng hcl.Range, names []string) {
	for _, k := range names {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if contains(managedHeaders, ck) {
			d.errorf(rng, "Header "+quote(ck)+" is hfork's", "hfork writes %s itself to frame the answer; a headers block may not set, add or remove it.", ck)
		}
	}
}

// formatHeaders prints a headers block when it holds anything.
func formatHeaders(b *body, h Headers) {
	if h.IsZero() {
		return
	}
	hb := b.block("headers")
	hb.attr("set", mapHCL(h.Set))
	hb.attr("add", mapHCL(h.Add))
	hb.attr("remove", listHCL(h.Remove))
}
