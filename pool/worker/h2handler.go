package worker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"

	"github.com/hfork/hfork/pool/worker/internal/h2"
)

// The slow path: requests the fast path does not answer run the worker's
// http.Handler in a goroutine of their own, with a ResponseWriter whose
// body becomes DATA frames under flow control and a Body fed by the
// stream's DATA.

var (
	errTruncated  = errors.New("file shorter than its stat said")
	errStreamGone = errors.New("http2: stream closed")
)

// h2BufSize is how much of a handler's body is gathered before it goes
// out as DATA: small writes share frames, and a handler that writes less
// than this and returns gets a content-length.
const h2BufSize = 16 << 10

// maxDiscard is how much of a request body is read and dropped after its
// answer is whole, before RST_STREAM NO_ERROR tells the client to stop.
const maxDiscard = 64 << 10

// startHandler runs the handler for r on s.
func (c *h2Conn) startHandler(s *h2.Stream, r *h2.Request, end bool) {
	req, err := c.newRequest(r, end)
	st := &h2Stream{c: c, s: s, fd: -1}
	s.User = st
	if err != nil {
		c.m.Reset(s, h2.ErrProtocol)
		c.release(st)
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	req = req.WithContext(ctx)
	st.hw = &h2Writer{st: st, hdr: make(http.Header), head: r.Method == http.MethodHead, cancel: cancel}
	if !end {
		st.rb = &h2Body{st: st}
		req.Body = st.rb
		c.fast.bodies++
	}
	go st.run(req)
}

// newRequest is r as net/http would have made it.
func (c *h2Conn) newRequest(r *h2.Request, end bool) (*http.Request, error) {
	var u *url.URL
	var err error
	if r.Method == http.MethodConnect {
		u = &url.URL{Host: r.Authority}
	} else if u, err = url.ParseRequestURI(r.Path); err != nil {
		return nil, err
	}
	hdr := make(http.Header, len(r.Header))
	host := r.Authority
	var cookies []string
	for _, f := range r.Header {
		switch f.Name {
		case "cookie":
			// Split across fields in HTTP/2; one line to net/http's apps.
			cookies = append(cookies, f.Value)
			continue
		case "host":
			if host == "" {
				host = f.Value
			}
			continue
		}
		k := http.CanonicalHeaderKey(f.Name)
		hdr[k] = append(hdr[k], f.Value)
	}
	if len(cookies) > 0 {
		hdr.Set("Cookie", strings.Join(cookies, "; "))
	}
	req := &http.Request{
		Method: r.Method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: hdr, Host: host,
		RemoteAddr: c.remote, RequestURI: r.Path, TLS: &c.state, Body: http.NoBody,
		ContentLength: r.ContentLength,
	}
	if end {
		req.ContentLength = 0
	}
	return req, nil
}

// run is the stream's goroutine.
func (st *h2Stream) run(req *http.Request) {
	hw := st.hw
	defer func() {
		if e := recover(); e != nil && e != http.ErrAbortHandler {
			st.c.srv.w.log.Error("http2 handler panic", "remote", st.c.remote, "path", req.URL.Path, "panic", e)
		}
		hw.finish()
	}()
	st.c.h.ServeHTTP(hw, req)
	hw.handlerDone = true
}

// data is body bytes for a handler.
func (st *h2Stream) data(p []byte, end bool) {
	c, rb := st.c, st.rb
	if rb == nil || rb.closed {
		c.m.Consume(st.s, len(p))
		if st.finished {
			// The answer is out; a little more of the body is read and
			// dropped, so the client's END_STREAM (and any error in the
			// body) still comes, but not a whole upload.
			st.dropped += len(p)
			if st.dropped > maxDiscard {
				c.m.Reset(st.s, h2.ErrNo)
			}
		}
	} else {
		rb.buf = append(rb.buf, p...)
	}
	if rb != nil && !rb.eof && (end || st.s.Over()) {
		rb.eof = true
		c.fast.bodies--
	}
	c.cond.Broadcast()
}

// reset is the stream ending early: the handler's context ends, its
// writes and reads fail.
func (st *h2Stream) reset() {
	st.closeFile()
	if st.hw != nil {
		st.hw.cancel()
	}
	if rb := st.rb; rb != nil && !rb.eof {
		rb.eof, rb.err = true, errStreamGone
		st.c.fast.bodies--
	}
	if rb := st.rb; rb != nil {
		st.c.m.Consume(st.s, len(rb.buf))
		rb.buf = nil
	}
	st.c.cond.Broadcast()
}

// h2Body is a request body fed by DATA frames.
type h2Body struct {
	st     *h2Stream
	buf    []byte
	eof    bool
	err    error
	closed bool
}

func (b *h2Body) Read(p []byte) (int, error) {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b.buf) == 0 && !b.eof && !b.closed && !c.closed {
		c.cond.Wait()
	}
	if len(b.buf) > 0 {
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		if len(b.buf) == 0 {
			b.buf = nil
		}
		c.m.Consume(b.st.s, n)
		c.flushLocked()
		return n, nil
	}
	switch {
	case b.err != nil:
		return 0, b.err
	case b.eof:
		return 0, io.EOF
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	}
	return 0, errStreamGone
}

func (b *h2Body) Close() error {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !b.closed {
		b.closed = true
		c.m.Consume(b.st.s, len(b.buf))
		b.buf = nil
		c.flushLocked()
	}
	return nil
}

// h2Writer is a handler's http.ResponseWriter (and Flusher).
type h2Writer struct {
	st          *h2Stream
	hdr         http.Header
	head        bool // HEAD: the body is counted, not sent
	cancel      context.CancelFunc
	status      int
	sentHeader  bool
	handlerDone bool
	buf         []byte
	err         error
}

func (hw *h2Writer) Header() http.Header { return hw.hdr }

func (hw *h2Writer) WriteHeader(code int) {
	if hw.status != 0 {
		return
	}
	if code >= 100 && code < 200 {
		if code != http.StatusSwitchingProtocols {
			hw.interim(code)
		}
		return
	}
	hw.status = code
}

// interim sends a 1xx head at once, as net/http does.
func (hw *h2Writer) interim(code int) {
	c := hw.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.m.WriteHeaders(hw.st.s, code, fieldsOf(hw.hdr, ""), false); err == nil {
		c.flushLocked()
	}
}

func (hw *h2Writer) Write(p []byte) (int, error) {
	if hw.status == 0 {
		hw.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(hw.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if hw.err != nil {
		return 0, hw.err
	}
	if hw.head {
		return len(p), nil
	}
	if len(hw.buf)+len(p) <= h2BufSize {
		hw.buf = append(hw.buf, p...)
		return len(p), nil
	}
	if err := hw.send(false, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (hw *h2Writer) WriteString(s string) (int, error) { return hw.Write([]byte(s)) }

func (hw *h2Writer) Flush() { _ = hw.FlushError() }

// FlushError is what http.ResponseController calls.
func (hw *h2Writer) FlushError() error {
	if hw.status == 0 {
		hw.WriteHeader(http.StatusOK)
	}
	return hw.send(false, nil)
}

// finish ends the response once the handler returned: what it did not
// send goes, with END_STREAM.
func (hw *h2Writer) finish() {
	st, c := hw.st, hw.st.c
	if hw.status == 0 {
		hw.status = http.StatusOK
	}
	if hw.handlerDone {
		if !hw.sentHeader && bodyAllowed(hw.status) && !hw.head && hw.hdr.Get("Content-Length") == "" {
			hw.hdr.Set("Content-Length", strconv.Itoa(len(hw.buf)))
		}
		_ = hw.send(true, nil)
	}
	c.mu.Lock()
	if !hw.handlerDone {
		// It panicked: end the stream rather than pass off half a response.
		c.m.Reset(st.s, h2.ErrInternal)
	}
	hw.cancel()
	st.finished = true
	rb := st.rb
	if rb != nil {
		// What came and was not read counts against maxDiscard too.
		c.m.Consume(st.s, len(rb.buf))
		st.dropped += len(rb.buf)
		rb.buf, rb.closed = nil, true
	}
	c.release(st)
	if rb != nil && !rb.eof && st.dropped > maxDiscard {
		c.m.Reset(st.s, h2.ErrNo)
	}
	if rb != nil && !rb.eof && st.s.Over() {
		rb.eof = true
		c.fast.bodies--
	}
	c.flushLocked()
	c.mu.Unlock()
}

// send writes the head if it is not out yet, then the buffer and p, and
// waits for the windows as it must; end ends the stream.
func (hw *h2Writer) send(end bool, p []byte) error {
	st, c := hw.st, hw.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if hw.err != nil {
		return hw.err
	}
	if !hw.sentHeader {
		hw.sentHeader = true
		sniff := hw.buf
		if len(sniff) == 0 {
			sniff = p
		}
		fields := fieldsOf(hw.hdr, sniffed(hw.hdr, hw.status, sniff))
		noBody := end && len(hw.buf) == 0 && len(p) == 0
		if err := c.m.WriteHeaders(st.s, hw.status, fields, noBody); err != nil {
			hw.err = err
			return err
		}
		if noBody {
			c.flushLocked()
			return nil
		}
	}
	if err := hw.sendData(hw.buf, end && len(p) == 0); err != nil {
		hw.err = err
		return err
	}
	hw.buf = hw.buf[:0]
	if err := hw.sendData(p, end); err != nil {
		hw.err = err
		return err
	}
	if end && !st.s.Closed() {
		if _, err := c.m.WriteData(st.s, nil, true); err != nil {
			hw.err = err
			return err
		}
	}
	c.flushLocked()
	return nil
}

// sendData writes b under flow control, waiting for windows; the lock is
// held, and dropped while it waits.
func (hw *h2Writer) sendData(b []byte, end bool) error {
	st, c := hw.st, hw.st.c
	if len(b) == 0 {
		return nil
	}
	var timedOut bool
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(b) > 0 {
		if c.closed {
			return errStreamGone
		}
		for c.writing && c.m.Pending() > maxPending && !c.closed {
			c.cond.Wait()
		}
		n, err := c.m.WriteData(st.s, b, end)
		if err != nil {
			return err
		}
		b = b[n:]
		if len(b) == 0 {
			return nil
		}
		c.flushLocked()
		if c.m.Window(st.s) > 0 {
			continue
		}
		if timedOut {
			c.m.Reset(st.s, h2.ErrCancel)
			return errStreamGone
		}
		if wto := c.srv.w.cfg.WriteTimeout; wto > 0 && timer == nil {
			// A client that never opens its window holds no handler
			// longer than write_timeout.
			timer = time.AfterFunc(wto, func() {
				c.mu.Lock()
				timedOut = true
				c.cond.Broadcast()
				c.mu.Unlock()
			})
		}
		c.cond.Wait()
	}
	return nil
}

// sniffed is the content-type net/http would add: the handler set none
// and a body comes.
func sniffed(h http.Header, status int, body []byte) string {
	if _, ok := h["Content-Type"]; ok || len(body) == 0 || !bodyAllowed(status) {
		return ""
	}
	return http.DetectContentType(body)
}

// fieldsOf is a handler's header as HTTP/2 fields, without what HTTP/2
// forbids; ctype is a sniffed content-type, or "".
func fieldsOf(h http.Header, ctype string) []hpack.HeaderField {
	fs := make([]hpack.HeaderField, 0, len(h)+2)
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		name := strings.ToLower(k)
		switch name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "trailer":
			continue
		}
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				fs = append(fs, hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	if ctype != "" {
		fs = append(fs, hpack.HeaderField{Name: "content-type", Value: ctype})
	}
	if _, ok := h["Date"]; !ok {
		fs = append(fs, hpack.HeaderField{Name: "date", Value: time.Now().UTC().Format(http.TimeFormat)})
	}
	return fs
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status < 200) && status != http.StatusNoContent && status != http.StatusNotModified
}
