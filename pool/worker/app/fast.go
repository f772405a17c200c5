package app

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	// Upstream, when set, is where the request goes instead: the server
	// forwards it (see FastUpstream) and Head and Body are unused.
	Upstream *FastUpstream

	scratch []byte // Head's storage when it is built per request
	sniff   *[512]byte
}

// Reset prepares r for the next request, keeping its storage.
func (r *FastResponse) Reset() {
	*r = FastResponse{FileFD: -1, scratch: r.scratch[:0], sniff: r.sniff}
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
	// FastUpstreams lists the upstreams ServeFast may answer with.
	FastUpstreams() []*FastUpstream
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
		return true
	}
	for i := range rt.routes {
		rr := &rt.routes[i]
		if strings.HasPrefix(p, rr.prefix) {
			fa, ok := rr.h.(fastApp)
			return ok && fa.fastOK() && fa.serveFast(req, resp)
		}
		if rr.slashRedirect && len(p) == len(rr.prefix)-1 && rr.prefix[:len(p)] == p {
			redirectSlashFast(req, resp)
			return true
		}
	}
	statusFast(resp, http.StatusNotFound)
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
	if code == http.StatusServiceUnavailable {
		b = append(b, "Retry-After: 1\r\n"...)
	}
	fastStatus[code] = b
}

// statusFast is writeStatus for the fast path.
func statusFast(resp *FastResponse, code int) {
	resp.Status = code
	resp.Head = fastStatus[code]
	resp.Body = statusBodies[code]
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
func (rs *respond) buildFast() {
	keys := make([]string, 0, len(rs.header))
	for k := range rs.header {
		switch k {
		case "Connection", "Date", "Transfer-Encoding", "Keep-Alive", "Upgrade", "Trailer":
			return
		}
		if !fastHeaderOK(k, rs.header[k]) {
			return
		}
		keys = append(keys, k)
	}
	if rs.status < 200 {
		return
	}
	slices.Sort(keys) // net/http writes header keys sorted
	b := appendStatusLine(nil, rs.status)
	for _, k := range keys {
		for _, v := range rs.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	rs.fastHead = b
}

func (rs *respond) fastOK() bool { return rs.fastHead != nil }

func (rs *respond) serveFast(req *FastRequest, resp *FastResponse) bool {
	resp.Status, resp.Head, resp.Body = rs.status, rs.fastHead, rs.body
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

// FastUpstream is one upstream of a proxy route, as a server that proxies
// by itself needs it.
type FastUpstream struct {
	// ID is the upstream's index among every fast upstream of the router,
	// for pooling connections to it.
	ID   int
	IP   net.IP
	Port int
	// Host is the Host header the upstream gets.
	Host string
}

// FastUpstreams lists every upstream ServeFast may answer with, by ID.
func (rt *router) FastUpstreams() []*FastUpstream {
	var ups []*FastUpstream
	for _, r := range rt.routes {
		if p, ok := r.h.(*proxy); ok {
			ups = append(ups, p.fast...)
		}
	}
	return ups
}

// buildFast prepares the proxy's fast path: every upstream must be plain
// http:// at an IP address, without a path or query of its own (the
// server does not resolve names or join paths; net/http does).
func (p *proxy) buildFast(nextID *int) {
	var fast []*FastUpstream
	for _, u := range p.targets {
		if u.Scheme != "http" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.ForceQuery {
			return
		}
		ip := net.ParseIP(u.Hostname())
		if ip == nil || strings.Contains(u.Hostname(), "%") {
			return
		}
		port := 80
		if ps := u.Port(); ps != "" {
			n, err := strconv.Atoi(ps)
			if err != nil || n <= 0 || n > 65535 {
				return
			}
			port = n
		}
		fast = append(fast, &FastUpstream{IP: ip, Port: port, Host: u.Host})
	}
	for _, f := range fast {
		f.ID = *nextID
		*nextID++
	}
	p.fast = fast
}

func (p *proxy) fastOK() bool { return p.fast != nil }

func (p *proxy) serveFast(req *FastRequest, resp *FastResponse) bool {
	if !req.Forwardable {
		return false
	}
	n := p.next.Add(1) - 1
	resp.Upstream = p.fast[n%uint64(len(p.fast))]
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
