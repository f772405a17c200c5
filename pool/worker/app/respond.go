package app

import (
	"net/http"
	"strconv"

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
	rs.buildFast(sc)
	return rs
}

func (rs *respond) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range rs.header {
		h[k] = v
	}
	w.WriteHeader(rs.status)
	if r.Method != http.MethodHead && len(rs.body) > 0 {
		w.Write(rs.body)
	}
}

// bodyAllowed reports whether a response with status may carry a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
