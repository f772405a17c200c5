package hclconfig

import (
	"mime"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var compressSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "encodings"}, {Name: "types"}, {Name: "min_size"}, {Name: "level"}},
}

var (
	compressEncodings = []string{"zstd", "gzip"}
	// defaultCompressTypes are text formats that shrink well; images,
	// video and archives are compressed already.
	defaultCompressTypes = []string{
		"application/javascript", "application/json", "application/manifest+json",
		"application/wasm", "application/xml", "image/svg+xml", "text/*",
	}
)

const (
	defaultCompressMinSize = 1 << 10
	defaultCompressLevel   = 1
)

// compressBlock decodes the one compress block among blocks, if any.
func (d *decoder) compressBlock(blocks []*hcl.Block, where string) Compress {
	var c Compress
	var first *hcl.Block
	for _, b := range blocks {
		if b.Type != "compress" {
			continue
		}
		if first != nil {
			d.errorf(b.DefRange, "Duplicate compress block", "A compress block is already declared at %s; there can be only one per %s.", at(first.DefRange), where)
			continue
		}
		first = b
		c = d.compress(b)
	}
	return c
}

func (d *decoder) compress(b *hcl.Block) Compress {
	content, _ := d.content(b.Body, compressSchema)
	attrs := content.Attributes
	c := Compress{
		Encodings: compressEncodings, Types: defaultCompressTypes,
		MinSize: defaultCompressMinSize, Level: defaultCompressLevel,
	}
	if list, rngs, ok := d.strList(attrs, "encodings", true); ok {
		c.Encodings = nil
		for i, e := range list {
			e = strings.ToLower(e)
			switch {
			case !contains(compressEncodings, e):
				d.errorf(rngs[i], "Invalid encoding", "%q is not an encoding hfork makes; use %s.", list[i], orList(compressEncodings))
			case contains(c.Encodings, e):
				d.errorf(rngs[i], "Duplicate encoding", "%q is listed twice.", e)
			default:
				c.Encodings = append(c.Encodings, e)
			}
		}
		if len(list) == 0 {
			// An empty list turns off what an outer level turned on.
			c = Compress{Off: true}
			return c
		}
	}
	if list, rngs, ok := d.strList(attrs, "types", true); ok {
		c.Types = nil
		for i, t := range list {
			mt, params, err := mime.ParseMediaType(t)
			if err != nil || len(params) > 0 || strings.Count(mt, "/") != 1 || strings.HasPrefix(mt, "*") {
				d.errorf(rngs[i], "Invalid type", "%q is not a media type like \"text/html\" or a family like \"text/*\".", t)
				continue
			}
			c.Types = append(c.Types, mt)
		}
	}
	d.size(attrs, "min_size", 1<<30, &c.MinSize)
	if d.integer(attrs, "level", &c.Level) && (c.Level < 1 || c.Level > 9) {
		d.errorf(attrs["level"].Expr.Range(), "Invalid level", "level is %d; use 1 (fastest, the default) to 9 (smallest). gzip takes it as it is, zstd as the nearest of its own levels.", c.Level)
	}
	return c
}

func formatCompress(b *body, c Compress) {
	switch {
	case c.Off:
		b.block("compress").attr("encodings", "[]")
	case len(c.Encodings) > 0:
		cb := b.block("compress")
		cb.attr("encodings", listHCL(c.Encodings))
		cb.attr("types", listHCL(c.Types))
		cb.attr("min_size", sizeHCL(c.MinSize))
		cb.attr("level", intHCL(c.Level))
	}
}
