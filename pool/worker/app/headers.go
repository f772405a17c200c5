package app

import (
	"bytes"
	"slices"

	"github.com/hfork/hfork/hclconfig"
)

// HeaderPolicy is the header blocks of a route's levels (listener, host,
// route) folded into one: applying each level in turn (remove, set, add,
// the outer level first) leaves every header it names either replaced by
// a fixed list, or with values appended to what the app wrote. Folding
// makes the answer's head a single pass over its lines.
type HeaderPolicy struct {
	replace []headerValues // the header's values are these (none: removed)
	append  []headerValues // these follow the app's own values
	// lines is replace and append as header lines, for the fast path.
	lines []byte
	// comp, on a proxy route that compresses, decides the Vary of an
	// answer the loop passes on (see AppendVary).
	comp *compressor
}

type headerValues struct {
	key    string // canonical
	values []string
}

// newHeaderPolicy folds levels, outermost first; nil when they do nothing.
func newHeaderPolicy(levels ...hclconfig.Headers) *HeaderPolicy {
	type state struct {
		fixed  bool // a remove or set reset the app's values
		values []string
	}
	st := map[string]*state{}
	get := func(k string) *state {
		if s, ok := st[k]; ok {
			return s
		}
		s := &state{}
		st[k] = s
		return s
	}
	for _, h := range levels {
		for _, k := range h.Remove {
			*get(k) = state{fixed: true}
		}
		for k, v := range h.Set {
			*get(k) = state{fixed: true, values: []string{v}}
		}
		for k, v := range h.Add {
			s := get(k)
			s.values = append(s.values, v)
		}
	}
	if len(st) == 0 {
		return nil
	}
	p := &HeaderPolicy{}
	keys := make([]string, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s := st[k]
		hv := headerValues{key: k, values: s.values}
		if s.fixed {
			p.replace = append(p.replace, hv)
		} else {
			p.append = append(p.append, hv)
		}
		for _, v := range s.values {
			p.lines = append(p.lines, k...)
			p.lines = append(p.lines, ": "...)
			p.lines = append(p.lines, v...)
			p.lines = append(p.lines, "\r\n"...)
		}
	}
	return p
}

// apply applies p to h, which the app has filled.
func (p *HeaderPolicy) apply(h map[string][]string) {
	for _, hv := range p.replace {
		if len(hv.values) == 0 {
			delete(h, hv.key)
		} else {
			h[hv.key] = hv.values // shared, never written: net/http only reads it
		}
	}
	for _, hv := range p.append {
		old := h[hv.key]
		h[hv.key] = append(old[:len(old):len(old)], hv.values...)
	}
}

// Replaces reports whether p decides name's values itself, so the app's
// line for it is dropped. name is compared without regard to case.
func (p *HeaderPolicy) Replaces(name []byte) bool {
	if p == nil {
		return false
	}
	for _, hv := range p.replace {
		if len(hv.key) == len(name) && bytes.EqualFold(name, []byte(hv.key)) {
			return true
		}
	}
	return false
}

// AppendLines appends the header lines p adds to an answer, each with
// its CRLF.
func (p *HeaderPolicy) AppendLines(b []byte) []byte {
	if p == nil {
		return b
	}
	return append(b, p.lines...)
}

// AppendVary appends "Vary: Accept-Encoding" to an upstream answer's
// head when net/http's proxy would have: the route compresses, and the
// answer is one it could have compressed (streamCoding's rules). ctype,
// encoded, ranged, length (-1: none) and varyAE describe the answer.
func (p *HeaderPolicy) AppendVary(b []byte, code int, ctype string, encoded, ranged bool, length int64, varyAE bool) []byte {
	if p == nil || p.comp == nil || varyAE || p.Replaces(hdrVary) {
		// A policy that sets or removes Vary has the last word.
		return b
	}
	if code < 200 || code == 204 || code == 304 || code == 206 || encoded || ranged ||
		!p.comp.typeOK(ctype) || length >= 0 && length < p.comp.minSize {
		return b
	}
	return append(b, "Vary: Accept-Encoding\r\n"...)
}

var hdrVary = []byte("Vary")

// rewriteHead appends head, a status line and header lines, to b with p
// applied.
func (p *HeaderPolicy) rewriteHead(b, head []byte) []byte {
	nl := bytes.IndexByte(head, '\n')
	b = append(b, head[:nl+1]...)
	for rest := head[nl+1:]; len(rest) > 0; {
		nl := bytes.IndexByte(rest, '\n')
		line := rest[:nl+1]
		rest = rest[nl+1:]
		if colon := bytes.IndexByte(line, ':'); colon > 0 && p.Replaces(line[:colon]) {
			continue
		}
		b = append(b, line...)
	}
	return append(b, p.lines...)
}
