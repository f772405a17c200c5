package hclconfig

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// body is a small HCL writer: Format needs attributes, labelled blocks and
// blank lines, laid out the way hclwrite.Format would (aligned "=" within a
// run of attributes), and nothing of hclwrite's editing model.
type body struct {
	items []item
}

type item struct {
	name   string // attribute name or block type; "" is a blank line
	value  string // rendered attribute value
	block  *body
	labels []string
}

func (b *body) attr(name, value string) { b.items = append(b.items, item{name: name, value: value}) }

func (b *body) blank() { b.items = append(b.items, item{}) }

func (b *body) block(typ string, labels ...string) *body {
	nb := &body{}
	b.items = append(b.items, item{name: typ, block: nb, labels: labels})
	return nb
}

func (b *body) write(sb *strings.Builder, depth int) {
	indent := strings.Repeat("  ", depth)
	for i := 0; i < len(b.items); {
		it := b.items[i]
		switch {
		case it.name == "":
			sb.WriteString("\n")
			i++
		case it.block != nil:
			sb.WriteString(indent + it.name)
			for _, l := range it.labels {
				sb.WriteString(" " + quoteHCL(l))
			}
			sb.WriteString(" {\n")
			it.block.write(sb, depth+1)
			sb.WriteString(indent + "}\n")
			i++
		default:
			// a run of attributes shares one column for "="
			j, width := i, 0
			for ; j < len(b.items) && b.items[j].name != "" && b.items[j].block == nil; j++ {
				width = max(width, len(b.items[j].name))
			}
			for _, a := range b.items[i:j] {
				value := strings.ReplaceAll(a.value, "\n", "\n"+indent)
				fmt.Fprintf(sb, "%s%-*s = %s\n", indent, width, a.name, value)
			}
			i = j
		}
	}
}

func (b *body) String() string {
	var sb strings.Builder
	b.write(&sb, 0)
	return sb.String()
}

// quoteHCL quotes s as an HCL string literal: Go-like escapes, plus a
// doubled "$" or "%" before "{" so the text is not read as a template.
func quoteHCL(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i, r := range s {
		switch r {
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '$', '%':
			sb.WriteRune(r)
			if strings.HasPrefix(s[i+1:], "{") {
				sb.WriteRune(r)
			}
		default:
			switch {
			case unicode.IsPrint(r):
				sb.WriteRune(r)
			case r < 0x10000:
				fmt.Fprintf(&sb, `\u%04x`, r)
			default:
				fmt.Fprintf(&sb, `\U%08x`, r)
			}
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

func listHCL(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quoteHCL(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// mapHCL prints an object, one key a line in sorted order. Keys are always
// quoted: a bare Content-Type is valid HCL but reads like a subtraction.
func mapHCL(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	obj := &body{}
	for _, k := range sortedKeys(m) {
		obj.attr(quoteHCL(k), quoteHCL(m[k]))
	}
	var sb strings.Builder
	obj.write(&sb, 1)
	return "{\n" + sb.String() + "}"
}

func durationHCL(d time.Duration) string { return quoteHCL(formatDuration(d)) }

func intHCL(n int) string { return strconv.Itoa(n) }

func boolHCL(v bool) string { return strconv.FormatBool(v) }
