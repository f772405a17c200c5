package app

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hfork/hfork/hclconfig"
)

// respond answers every request with the same status, headers and body.
type respond struct {
	status int
	header http.Header // canonical keys; values shared, never mutated
	body   []byte
	// fastHead is the status line and headers for the fast path; nil when
	// it cannot answer (see buildFast).
	fastHead []byte
	// comp is set when the body is one the route compresses; variants
	// hold it compressed, one per coding, made once.
	comp     *compressor
	variants []respondVariant
	minSize  bool // the body is at least min_size long
}

// respondVariant is the answer in one content coding.
type respondVariant struct {
	enc      string
	header   http.Header
	body     []byte
	fastHead []byte
}

func newRespond(c hclconfig.Respond, sc *scope) *respond {
	rs := &respond{status: c.Status, header: http.Header{}, body: []byte(c.Body)}
	if rs.status == 0 {
		rs.status = http.StatusOK
	}
	for k, v := range c.Headers {
		rs.header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	// A body-less status must not announce a length (RFC 9110 8.6).
	if bodyAllowed(rs.status) {
		if _, ok := rs.header["Content-Type"]; !ok {
			rs.header["Content-Type"] = hdrTextPlain
		}
		rs.header["Content-Length"] = []string{strconv.Itoa(len(rs.body))}
	} else {
		rs.body = nil
		delete(rs.header, "Content-Length")
	}
	if sc != nil && sc.comp != nil && len(rs.body) > 0 && rs.status != http.StatusPartialContent &&
		rs.header.Get("Content-Encoding") == "" && sc.comp.typeOK(rs.header.Get("Content-Type")) {
		rs.compress(sc.comp)
	}
	rs.buildFast(sc)
	return rs
}

// compress makes the body's variants, once for the life of the worker.
func (rs *respond) compress(cp *compressor) {
	rs.comp = cp
	rs.minSize = int64(len(rs.body)) >= cp.minSize
	if rs.minSize {
		addVary(rs.header)
	}
	for _, enc := range cp.encodings {
		body := cp.compressBytes(enc, rs.body)
		h := rs.header.Clone()
		h["Content-Encoding"] = []string{enc}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		addVary(h)
		rs.variants = append(rs.variants, respondVariant{enc: enc, header: h, body: body})
	}
}

// pick chooses the variant for Accept-Encoding ae: nil for the identity
// body; ok is false when the client takes neither (406).
func (rs *respond) pick(ae string) (*respondVariant, bool) {
	enc, identityOK := rs.comp.negotiate(ae)
	if enc == "" || (!rs.minSize && identityOK) {
		return nil, identityOK
	}
	for i := range rs.variants {
		if rs.variants[i].enc == enc {
			return &rs.variants[i], true
		}
	}
	return nil, identityOK
}

func (rs *respond) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	header, body := rs.header, rs.body
	if rs.comp != nil {
		v, ok := rs.pick(strings.Join(r.Header["Accept-Encoding"], ","))
		if !ok {
			writeStatus(w, http.StatusNotAcceptable)
			return
		}
		if v != nil {
			header, body = v.header, v.body
		}
	}
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	w.WriteHeader(rs.status)
	if r.Method != http.MethodHead && len(body) > 0 {
		w.Write(body)
	}
}

// bodyAllowed reports whether a response with status may carry a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
