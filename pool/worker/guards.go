package worker

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/hfork/hfork/hclconfig"
)

// handler returns what a worker serves for l: the routes in next, behind
// redirect_https and max_body_bytes. Main wraps it in the access log, so
// redirects and 413s are logged like any response.
func handler(l hclconfig.Listener, next http.Handler) http.Handler {
	h := next
	if l.MaxBodyBytes > 0 {
		h = &bodyLimit{next: h, max: l.MaxBodyBytes}
	}
	if l.RedirectHTTPS {
		r := &httpsRedirect{next: h, port: l.HTTPSPort}
		for _, rt := range l.Routes {
			r.prefixes = append(r.prefixes, rt.Prefix)
		}
		h = r
	}
	return h
}

// httpsRedirect answers every request no route matches with a permanent
// redirect (308, which keeps the method and body) to the same host, path
// and query on https://, at port (443 is left out of the URL). Routes that
// match are served, for what must stay on plain HTTP, like ACME HTTP-01
// challenges.
type httpsRedirect struct {
	next     http.Handler
	prefixes []string
	port     int
}

func (h *httpsRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, p := range h.prefixes {
		if strings.HasPrefix(r.URL.Path, p) {
			h.next.ServeHTTP(w, r)
			return
		}
	}
	host := r.Host
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	if host == "" {
		// HTTP/1.0 without a Host header: there is nowhere to send it.
		http.Error(w, "400 bad request: no Host header to redirect to", http.StatusBadRequest)
		return
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 literal
	}
	if h.port != 443 && h.port != 0 {
		host += ":" + strconv.Itoa(h.port)
	}
	// RequestURI is the path and query exactly as the client sent them.
	target := "https://" + host + r.RequestURI
	if r.RequestURI == "" || !strings.HasPrefix(r.RequestURI, "/") {
		target = "https://" + host + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusPermanentRedirect)
}

// bodyLimit enforces max_body_bytes. A declared Content-Length over the
// limit is refused with 413 before the app runs, and net/http does not
// send "100 Continue" for it. A body of unknown length (chunked, or an
// HTTP/2 stream without content-length) is counted as the app reads it:
// past the limit the read fails, and the response becomes a 413 whatever
// the app was about to answer, unless it had already sent its header.
type bodyLimit struct {
	next http.Handler
	max  int64
}

func (b *bodyLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > b.max {
		tooLarge(w)
		return
	}
	if r.ContentLength >= 0 {
		// net/http reads exactly Content-Length bytes, which fit.
		b.next.ServeHTTP(w, r)
		return
	}
	body := &countedBody{ReadCloser: r.Body, left: b.max, limit: b.max}
	r.Body = body
	b.next.ServeHTTP(&limitWriter{rw: w, body: body}, r)
}

func tooLarge(w http.ResponseWriter) {
	// The rest of the body is never read, so the connection cannot carry
	// another request.
	w.Header().Set("Connection", "close")
	http.Error(w, "413 request body too large", http.StatusRequestEntityTooLarge)
}

// countedBody fails reads, as http.MaxBytesReader does, once more than
// limit bytes came in.
type countedBody struct {
	io.ReadCloser
	left, limit int64
	over        bool
}

func (c *countedBody) Read(p []byte) (int, error) {
	if c.over {
		return 0, &http.MaxBytesError{Limit: c.limit}
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.ReadCloser.Read(p)
	if int64(n) > c.left {
		c.over = true
		return int(c.left), &http.MaxBytesError{Limit: c.limit}
	}
	c.left -= int64(n)
	return n, err
}

// limitWriter turns the response into a 413 once the body went over.
type limitWriter struct {
	rw      http.ResponseWriter
	body    *countedBody
	started bool // the app's header went out
	refused bool // the 413 went out instead
}

// intercept reports whether the app's output is to be dropped, sending
// the 413 the first time.
func (l *limitWriter) intercept() bool {
	if l.refused {
		return true
	}
	if l.started || !l.body.over {
		l.started = true
		return false
	}
	l.refused = true
	tooLarge(l.rw)
	return true
}

func (l *limitWriter) Header() http.Header { return l.rw.Header() }

func (l *limitWriter) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		l.rw.WriteHeader(code)
		return
	}
	if !l.intercept() {
		l.rw.WriteHeader(code)
	}
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.intercept() {
		return len(p), nil
	}
	return l.rw.Write(p)
}

func (l *limitWriter) ReadFrom(src io.Reader) (int64, error) {
	if l.intercept() {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := l.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{l.rw}, src)
}

func (l *limitWriter) Flush() { _ = l.FlushError() }

func (l *limitWriter) FlushError() error {
	if l.intercept() {
		return nil
	}
	return http.NewResponseController(l.rw).Flush()
}

func (l *limitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if l.body.over {
		return nil, nil, errors.New("hijack after the body went over max_body_bytes")
	}
	l.started = true
	return http.NewResponseController(l.rw).Hijack()
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (l *limitWriter) Unwrap() http.ResponseWriter { return l.rw }
