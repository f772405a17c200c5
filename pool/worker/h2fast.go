package worker

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/h2"
	"github.com/hfork/hfork/pool/worker/internal/rawsys"
)

// fastState is what the reader reuses from one fast answer to the next.
type fastState struct {
	req    app.FastRequest
	resp   app.FastResponse
	fields []hpack.HeaderField
	date   string
	dateAt int64
	reqID  []byte
	bodies int // slow-path streams whose request body is still arriving
}

type fastHead struct {
	fields []hpack.HeaderField
	hasLen bool
}

// maxHeads bounds the cache of heads: redirects make one per target.
const maxHeads = 256

// fileChunk bounds what one stream puts in the output per pass, so a
// large file under a large window does not sit in memory whole, and the
// streams waiting share each write.
const fileChunk = 16 << 10

// h2Stream is the driver's side of a stream.
type h2Stream struct {
	c *h2Conn
	s *h2.Stream
	// A fast answer's body that waits for the window: bytes, or a file.
	body     []byte
	fd       int
	off, end int64
	// A handler's (h2handler.go).
	hw       *h2Writer
	rb       *h2Body
	finished bool // the handler returned
	dropped  int  // body bytes dropped since
}

// request starts the answer to a request head.
func (c *h2Conn) request(ev *h2.Event) {
	r := ev.Req
	if ev.End && (r.Method == http.MethodGet || r.Method == http.MethodHead) && c.serveFast(ev.Stream, r) {
		return
	}
	c.startHandler(ev.Stream, r, ev.End)
}

// serveFast answers r from the routes' fast path, if they have one for it.
func (c *h2Conn) serveFast(s *h2.Stream, r *h2.Request) bool {
	f := &c.fast
	path, query, ok := splitTarget(r.Path)
	if !ok {
		return false
	}
	fr := &f.req
	*fr = app.FastRequest{Method: r.Method, Path: path, Query: query, Host: r.Authority}
	var referer, ua, xff, rid string
	for _, h := range r.Header {
		switch h.Name {
		case "host":
			if fr.Host == "" {
				fr.Host = h.Value
			}
		case "accept-encoding":
			if fr.AcceptEncoding != "" {
				return false // net/http joins them
			}
			fr.AcceptEncoding = h.Value
		case "range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range":
			fr.Conditional = true
		case "referer":
			referer = h.Value
		case "user-agent":
			ua = h.Value
		case "x-forwarded-for":
			if xff != "" {
				xff += ", "
			}
			xff += h.Value
		case "x-request-id":
			rid = h.Value
		}
	}
	began := time.Now()
	w := c.srv.w
	// Read once per request, as ServeHTTP does: a swap (swap.go) changes
	// the routes between requests.
	t := w.tab.Load()
	t.refs.Add(1)
	defer t.release()
	f.resp.Reset()
	if t.fast == nil || !t.fast.ServeFast(fr, &f.resp) {
		return false
	}
	resp := &f.resp
	if resp.Proxy != nil {
		// Not Forwardable, so a proxy route declines; should one answer
		// anyway, net/http serves it.
		return false
	}
	head := r.Method == http.MethodHead
	n := resp.BodyLen()
	fh := c.srv.headFor(resp.Head)
	f.fields = append(f.fields[:0], fh.fields...)
	f.fields = append(f.fields, hpack.HeaderField{Name: "date", Value: f.dateNow(began)})
	if !fh.hasLen && resp.Status != http.StatusNoContent && resp.Status != http.StatusNotModified {
		f.fields = append(f.fields, hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(n, 10)})
	}
	noBody := head || n == 0
	st := &h2Stream{c: c, s: s, fd: -1}
	s.User = st
	c.m.WriteHeaders(s, resp.Status, f.fields, noBody)
	switch {
	case noBody:
		if resp.FileFD >= 0 {
			rawsys.Close(resp.FileFD)
		}
	case resp.FileFD >= 0:
		st.fd, st.end = resp.FileFD, resp.FileSize
	default:
		st.body = resp.Body
	}
	bytes := n
	if head {
		bytes = 0
	}
	if a := t.access; a != nil {
		c.logFast(a, r, fr, resp.Status, bytes, began, referer, ua, xff, rid)
	}
	w.servedRoute(w.metrics.route(fr.Host, path), resp.Status, bytes, began.UnixNano())
	if noBody || st.send() {
		c.release(st)
	} else {
		c.waiting = append(c.waiting, st)
	}
	return true
}

func (c *h2Conn) logFast(a *app.AccessLog, r *h2.Request, fr *app.FastRequest, status int, bytes int64, began time.Time, referer, ua, xff, rid string) {
	f := &c.fast
	client := c.remote
	peer := clientOf(c.remote)
	if t := c.srv.trust; t != nil {
		if cl, _ := t.Client(peer, xff); cl != peer {
			client = net.JoinHostPort(cl, "0")
		}
	}
	f.reqID = f.reqID[:0]
	if rid != "" && c.srv.trust.Trusts(peer) && app.ValidRequestID(rid) {
		f.reqID = append(f.reqID, rid...)
	} else {
		f.reqID = app.AppendRequestID(f.reqID)
	}
	a.Log(&app.Entry{
		Remote: client, RequestID: string(f.reqID), Method: r.Method, RequestURI: r.Path, Path: fr.Path,
		RawQuery: fr.Query, Proto: "HTTP/2.0", Host: fr.Host, Referer: referer, UserAgent: ua,
		Status: status, Bytes: bytes, Start: began, End: a.Now(),
	})
}

// clientOf is the address part of "ip:port".
func clientOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return ""
}

// send puts what the windows allow of st's body in the output; it
// reports whether the body is all out (or the stream is over).
func (st *h2Stream) send() bool {
	m := st.c.m
	if st.fd < 0 {
		n, err := m.WriteData(st.s, st.body, true)
		st.body = st.body[n:]
		if err != nil || len(st.body) == 0 {
			st.body = nil
			return true
		}
		return false
	}
	budget := fileChunk
	for st.off < st.end && budget > 0 {
		k := int(min(int64(m.Window(st.s)), st.end-st.off, int64(budget)))
		if k == 0 {
			return false
		}
		n, err := m.WriteDataFunc(st.s, k, st.off+int64(k) == st.end, func(b []byte) error {
			r, err := rawsys.Pread(st.fd, b, st.off)
			if err == nil && r < len(b) {
				err = errTruncated
			}
			st.off += int64(max(r, 0))
			return err
		})
		budget -= n
		if err != nil {
			// A file cut short cannot fill its content-length.
			m.Reset(st.s, h2.ErrInternal)
			st.closeFile()
			return true
		}
	}
	if st.off < st.end {
		return false
	}
	st.closeFile()
	return true
}

func (st *h2Stream) closeFile() {
	if st.fd >= 0 {
		rawsys.Close(st.fd)
		st.fd = -1
	}
}

// resume sends what waits for s's window, or every stream's when s is
// nil.
func (c *h2Conn) resume(s *h2.Stream) {
	if s != nil {
		if st, ok := s.User.(*h2Stream); ok && st.hw != nil {
			c.cond.Broadcast()
			return
		}
	} else {
		c.cond.Broadcast() // handlers waiting for the connection window
	}
	c.pump()
}

// pump sends the fast answers waiting for a window, as far as the output
// takes them.
func (c *h2Conn) pump() {
	keep := c.waiting[:0]
	for _, st := range c.waiting {
		if st.s.Closed() {
			st.closeFile()
			c.release(st)
			continue
		}
		if c.m.Pending() >= maxPending || !st.send() {
			keep = append(keep, st)
			continue
		}
		c.release(st)
	}
	clear(c.waiting[len(keep):])
	c.waiting = keep
}

// headFor converts an HTTP/1 answer head to HTTP/2 fields, once per
// distinct head for all the worker's connections.
func (s *h2Server) headFor(head []byte) fastHead {
	s.headsMu.RLock()
	fh, ok := s.heads[string(head)]
	s.headsMu.RUnlock()
	if ok {
		return fh
	}
	fh = convertHead(head)
	s.headsMu.Lock()
	if len(s.heads) >= maxHeads {
		clear(s.heads)
	}
	s.heads[string(head)] = fh
	s.headsMu.Unlock()
	return fh
}

// convertHead is an HTTP/1 answer head as HTTP/2 fields.
func convertHead(head []byte) fastHead {
	var fh fastHead
	rest := head
	if i := bytes.Index(rest, []byte("\r\n")); i >= 0 {
		rest = rest[i+2:] // the status line
	}
	for len(rest) > 0 {
		line := rest
		if i := bytes.Index(rest, []byte("\r\n")); i >= 0 {
			line, rest = rest[:i], rest[i+2:]
		} else {
			rest = nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name := strings.ToLower(string(k))
		switch name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue
		case "content-length":
			fh.hasLen = true
		}
		fh.fields = append(fh.fields, hpack.HeaderField{Name: name, Value: string(bytes.TrimSpace(v))})
	}
	return fh
}

// dateNow is the Date field, formatted once a second.
func (f *fastState) dateNow(now time.Time) string {
	if sec := now.Unix(); sec != f.dateAt || f.date == "" {
		f.dateAt = sec
		f.date = now.UTC().Format(http.TimeFormat)
	}
	return f.date
}

// splitTarget splits :path into the path and the query, if the path is
// one the fast path takes: no percent-escapes and nothing that would
// need one, so it is its own decoded form.
func splitTarget(target string) (path, query string, ok bool) {
	path, query, _ = strings.Cut(target, "?")
	if path == "" || path[0] != '/' {
		return "", "", false
	}
	for i := 0; i < len(path); i++ {
		if !fastPathByte[path[i]] {
			return "", "", false
		}
	}
	for i := 0; i < len(query); i++ {
		if b := query[i]; !fastPathByte[b] && b != '?' && b != '%' {
			return "", "", false
		}
	}
	return path, query, true
}

// fastPathByte is the bytes a path may hold as it is (RFC 3986 pchar and
// "/", without "%").
var fastPathByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:@/", b) >= 0
	}
	return t
}()
