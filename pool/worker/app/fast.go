package app

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker/internal/upstream"
)

// The fast path: a server that parses HTTP/1.x itself (the worker's event
// loop) asks the routes to answer the plainest requests, GET and HEAD
// without a body whose path needs no decoding, as bytes, without building
// an *http.Request or calling a ResponseWriter. An app answers exactly what
// its ServeHTTP would; whatever it cannot answer that way it declines, and
// the request goes to net/http and ServeHTTP after all.

// FastRequest is a request a fast server parsed. Its strings may point into
// the server's read buffer: an app must not keep them.
type FastRequest struct {
	Method string // "GET" or "HEAD"
	// Path is the path as sent. It has no percent-escapes, so it is also
	// the decoded path, and only characters that need no escaping.
	Path  string
	Query string // raw, without the "?"
	// Host is the Host header as sent ("" for HTTP/1.0 without one).
	Host string
	// AcceptEncoding is the Accept-Encoding header as sent.
	AcceptEncoding string
	// Conditional says the request has Range or If-* headers, which only
	// net/http's ServeContent answers.
	Conditional bool
	// Forwardable says the proxy may pass the request on as it is: HTTP/1.1,
	// no TE header, no Connection option other than close and keep-alive.
	Forwardable bool
}

// FastResponse is an app's answer to a FastRequest.
type FastResponse struct {
	Status int
	// Head is the status line and the header lines, each ending in CRLF.
	// The server adds Date, Connection and the blank line.
	Head []byte
	// Body follows Head, unless the request is HEAD.
	Body []byte
	// FileFD, when not -1, is a file whose first FileSize bytes are the
	// body instead; the server sends it (sendfile) and closes it, also for
	// HEAD, where it only closes it.
	FileFD   int
	FileSize int64
	// Proxy, when set, is where the request goes instead: the server
	// forwards it to one of its upstreams, and Head and Body are unused.
	Proxy *FastProxy

	// Final says Head was made under the route's scope already, so the
	// router leaves it as it is.
	Final bool
	own   bool // hfork's own error answer, which an error page replaces

	scratch []byte // Head's storage when it is built per request
	hbuf    []byte // Head's storage once a header policy rewrote it
	sniff   *[512]byte
}

// Reset prepares r for the next request, keeping its storage.
func (r *FastResponse) Reset() {
	*r = FastResponse{FileFD: -1, scratch: r.scratch[:0], hbuf: r.hbuf[:0], sniff: r.sniff}
	if r.sniff == nil {
		r.sniff = new([512]byte)
	}
}

// BodyLen is the length of the body Head announces.
func (r *FastResponse) BodyLen() int64 {
	if r.FileFD >= 0 {
		return r.FileSize
	}
	return int64(len(r.Body))
}

// FastServer is the router's fast path.
type FastServer interface {
	// ServeFast answers req into resp and reports true, or reports false
	// when net/http must serve it; then resp is left as it was.
	ServeFast(req *FastRequest, resp *FastResponse) bool
	// FastRoutes reports whether any route has a fast path at all.
	FastRoutes() bool
	// FastProxies lists the proxy routes ServeFast may answer with.
	FastProxies() []*FastProxy
}

// fastApp is an app with a fast path.
type fastApp interface {
	// fastOK reports whether serveFast can answer anything at all.
	fastOK() bool
	serveFast(req *FastRequest, resp *FastResponse) bool
}

func (rt *router) FastRoutes() bool {
	return slices.ContainsFunc(rt.routes, func(r route) bool {
		fa, ok := r.h.(fastApp)
		return ok && fa.fastOK()
	})
}

// ServeFast is ServeHTTP for a FastRequest.
func (rt *router) ServeFast(req *FastRequest, resp *FastResponse) bool {
	p := req.Path
	if rt.redirectHTTPS && !slices.ContainsFunc(rt.routes, func(r route) bool { return strings.HasPrefix(p, r.prefix) }) {
		// Handler's https redirect answers what no route matches.
		return false
	}
	if !strings.HasPrefix(p, "/") || hasDotSegment(p) {
		statusFast(resp, http.StatusBadRequest)
		rt.scope.fast(resp)
		return true
	}
	for i := range rt.routes {
		rr := &rt.routes[i]
		if strings.HasPrefix(p, rr.prefix) {
			fa, ok := rr.h.(fastApp)
			if !ok || !fa.fastOK() || !fa.serveFast(req, resp) {
				return false
			}
			rr.scope.fast(resp)
			return true
		}
		if rr.slashRedirect && len(p) == len(rr.prefix)-1 && rr.prefix[:len(p)] == p {
			redirectSlashFast(req, resp)
			rr.scope.fast(resp)
			return true
		}
	}
	statusFast(resp, http.StatusNotFound)
	rt.scope.fast(resp)
	return true
}

// appendStatusLine writes the status line net/http writes for code.
func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// fastStatus holds writeStatus's answers as bytes; router.go's init fills
// it, after statusBodies.
var fastStatus = map[int][]byte{}

func addFastStatus(code int) {
	if _, ok := statusBodies[code]; !ok {
		b := []byte(fmt.Sprintf("%d %s\n", code, strings.ToLower(http.StatusText(code))))
		statusBodies[code] = b
		statusLens[code] = []string{fmt.Sprint(len(b))}
	}
	var b []byte
	b = appendStatusLine(b, code)
	b = append(b, "Content-Length: "+statusLens[code][0]+"\r\n"...)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\n"...)
	b = append(b, "X-Content-Type-Options: nosniff\r\n"...)
	fastStatus[code] = b
}

// statusFast is writeStatus for the fast path.
func statusFast(resp *FastResponse, code int) {
	resp.Status = code
	resp.Head = fastStatus[code]
	resp.Body = statusBodies[code]
	resp.own = true
}

// redirectSlashFast is redirectSlash for the fast path: only GET and HEAD
// come here, so it is always 301.
func redirectSlashFast(req *FastRequest, resp *FastResponse) {
	b := appendStatusLine(resp.scratch[:0], http.StatusMovedPermanently)
	b = append(b, "Location: "...)
	b = append(b, req.Path...)
	b = append(b, '/')
	if req.Query != "" {
		b = append(b, '?')
		b = append(b, req.Query...)
	}
	b = append(b, "\r\n"...)
	b = appendNoBody(b, req)
	resp.scratch = b
	resp.Status, resp.Head = http.StatusMovedPermanently, b
}

// appendNoBody ends the header of a response whose handler wrote no body,
// as net/http does: "Content-Length: 0", except for HEAD.
func appendNoBody(b []byte, req *FastRequest) []byte {
	if req.Method == http.MethodHead {
		return b
	}
	return append(b, "Content-Length: 0\r\n"...)
}

// fastHead is respond's answer as bytes, built once; nil when a configured
// header is one the server itself manages on the fast path.
func (rs *respond) buildFast(sc *scope) {
	rs.fastHead = fastHeadFor(rs.status, rs.header, sc)
	for i := range rs.variants {
		v := &rs.variants[i]
		v.fastHead = fastHeadFor(rs.status, v.header, sc)
		if v.fastHead == nil {
			rs.fastHead = nil
		}
	}
}

// fastHeadFor is the head net/http writes for status and hdr under sc's
// header policy; nil when a header is one the server itself manages on
// the fast path.
func fastHeadFor(status int, hdr http.Header, sc *scope) []byte {
	if sc != nil && sc.headers != nil {
		hdr = hdr.Clone()
		sc.headers.apply(hdr)
	}
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		switch k {
		case "Connection", "Date", "Transfer-Encoding", "Keep-Alive", "Upgrade", "Trailer":
			return nil
		}
		if !fastHeaderOK(k, hdr[k]) {
			return nil
		}
		keys = append(keys, k)
	}
	if status < 200 {
		return nil
	}
	slices.Sort(keys) // net/http writes header keys sorted
	b := appendStatusLine(nil, status)
	for _, k := range keys {
		for _, v := range hdr[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

func (rs *respond) fastOK() bool { return rs.fastHead != nil }

func (rs *respond) serveFast(req *FastRequest, resp *FastResponse) bool {
	if rs.comp != nil {
		v, ok := rs.pick(req.AcceptEncoding)
		if !ok {
			statusFast(resp, http.StatusNotAcceptable)
			return true
		}
		if v != nil {
			resp.Status, resp.Head, resp.Body = rs.status, v.fastHead, v.body
			resp.Final = true
			return true
		}
	}
	resp.Status, resp.Head, resp.Body = rs.status, rs.fastHead, rs.body
	resp.Final = true // buildFast applied the scope's headers
	return true
}

func (rd *redirect) fastOK() bool { return true }

func (rd *redirect) serveFast(req *FastRequest, resp *FastResponse) bool {
	b := appendStatusLine(resp.scratch[:0], rd.status)
	b = append(b, "Location: "...)
	b = append(b, rd.to...)
	if rd.appendPath {
		// The path needs no escaping, so it is its escaped form too.
		b = append(b, strings.TrimLeft(strings.TrimPrefix(req.Path, rd.prefix), `/\`)...)
	}
	if q := req.Query; q != "" {
		if rd.toHasQuery {
			b = append(b, '&')
		} else {
			b = append(b, '?')
		}
		b = append(b, q...)
	}
	b = append(b, "\r\n"...)
	b = appendNoBody(b, req)
	resp.scratch = b
	resp.Status, resp.Head = rd.status, b
	return true
}

// fastHeaderOK reports whether a configured header can be written as it
// is: net/http would drop an invalid name and rewrite a line break.
func fastHeaderOK(k string, vs []string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isTokenByte(k[i]) {
			return false
		}
	}
	for _, v := range vs {
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return false
			}
		}
	}
	return true
}

// isTokenByte reports whether c may appear in an HTTP token (RFC 9110 5.6.2).
func isTokenByte(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// FastProxy is a proxy route, as a server that proxies by itself needs
// it: its upstreams, what it changes in the request's headers, and the
// route's scope for its answers.
type FastProxy struct {
	Group *upstream.Group
	// request_headers, prepared: Drop holds the lower-case names of the
	// client's headers not passed on (remove's and set's), Set and Add
	// the name and value pairs to append, sorted by name.
	Drop     []string
	Set, Add [][2]string

	scope  *scope        // the proxy route's
	answer *HeaderPolicy // what the upstream's answer head gets
}

// Headers is what the route does to the upstream's answer head: its
// header policy, and the Vary of a route that compresses; nil for
// nothing.
func (p *FastProxy) Headers() *HeaderPolicy { return p.answer }

// answerPolicy is the route's header policy with its compressor, for
// the Vary the loop adds to answers it passes on uncompressed.
func answerPolicy(sc *scope) *HeaderPolicy {
	switch {
	case sc == nil || sc.headers == nil && sc.comp == nil:
		return nil
	case sc.comp == nil:
		return sc.headers
	}
	h := &HeaderPolicy{}
	if sc.headers != nil {
		*h = *sc.headers
	}
	h.comp = sc.comp
	return h
}

// StatusFast is StatusFast for a failed exchange on p's route: hfork's
// own answer, under the proxy route's scope.
func (p *FastProxy) StatusFast(resp *FastResponse, code int) {
	StatusFast(resp, code)
	p.scope.fast(resp)
}

// FastProxies lists the proxy routes ServeFast may answer with.
func (rt *router) FastProxies() []*FastProxy {
	var ps []*FastProxy
	for _, r := range rt.routes {
		if p, ok := r.h.(*proxy); ok && p.fast != nil {
			ps = append(ps, p.fast)
		}
	}
	return ps
}

// buildFast prepares the proxy's fast path: every upstream must be plain
// http:// (at an IP or a hostname) or a unix socket, without a path or
// query of its own (the server does not join paths; net/http does).
func (p *proxy) buildFast(c hclconfig.Proxy, sc *scope) {
	if !p.group.Plain {
		return
	}
	for _, s := range c.Upstream {
		if strings.HasPrefix(s, "unix:") {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.ForceQuery {
			return
		}
	}
	rh := c.RequestHeaders
	fp := &FastProxy{Group: p.group, scope: sc, answer: answerPolicy(sc)}
	for _, k := range rh.Remove {
		fp.Drop = append(fp.Drop, strings.ToLower(k))
	}
	for _, k := range slices.Sorted(maps.Keys(rh.Set)) {
		fp.Drop = append(fp.Drop, strings.ToLower(k))
		fp.Set = append(fp.Set, [2]string{http.CanonicalHeaderKey(k), rh.Set[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(rh.Add)) {
		fp.Add = append(fp.Add, [2]string{http.CanonicalHeaderKey(k), rh.Add[k]})
	}
	p.fast = fp
}

func (p *proxy) fastOK() bool { return p.fast != nil }

func (p *proxy) serveFast(req *FastRequest, resp *FastResponse) bool {
	if !req.Forwardable {
		return false
	}
	if sc := p.fast.scope; sc != nil && sc.comp != nil {
		// A client that takes a coding gets it from net/http, which
		// compresses the stream; the loop passes the others on.
		if enc, _ := sc.comp.negotiate(req.AcceptEncoding); enc != "" {
			return false
		}
	}
	resp.Proxy = p.fast
	return true
}

// StatusFast answers resp with code's short plain-text answer, as the
// routes' own errors look.
func StatusFast(resp *FastResponse, code int) {
	if _, ok := fastStatus[code]; !ok {
		addFastStatus(code)
	}
	statusFast(resp, code)
}

// AppendStatusLine appends the status line net/http writes for code.
func AppendStatusLine(b []byte, code int) []byte { return appendStatusLine(b, code) }
