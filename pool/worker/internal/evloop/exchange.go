package evloop

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/h1"
	"github.com/hfork/hfork/pool/worker/internal/poll"
	"github.com/hfork/hfork/pool/worker/internal/upstream"
	"golang.org/x/sys/unix"
)

// The event loop's proxy forwards a plain GET or HEAD to a proxy route's
// upstream over the pool's keep-alive connections (upstream.go), and
// streams the answer back, with what httputil.ReverseProxy and net/http do
// to the headers on the way: hop-by-hop headers dropped both ways,
// X-Forwarded-For/-Host/-Proto set, the upstream's Host, the status line
// rewritten with its standard text, a Date added if missing. The
// upstream's body framing is kept: a Content-Length body is copied, a
// chunked one passed through chunk by chunk, one delimited by the upstream
// closing ends the client's connection too.
//
// The upstream is the group's pick (package upstream), the same policy
// and health the proxy app uses. Failures answer as the proxy app does:
// 503 when no upstream is healthy, 502, or 504 for a timeout (connect,
// read, or the request timeout). A request on a pooled connection that
// the upstream had closed is sent again on a new one, as net/http's
// transport does for an idempotent request; a refused, reset or timed out
// connection counts against the upstream's health (max_fails), and the
// request, which is a GET or HEAD, goes to another upstream while retries
// allow and it has had no byte of an answer. Once the answer's head has
// reached the client, a failure can only cut the connection.

// exchange is one forwarded request.
type exchange struct {
	c        *conn
	px       *app.FastProxy
	up       *upstream.Member   // nil: none was healthy
	tried    []*upstream.Member // up and those that failed before it
	client   string             // the client's "ip:port" (see Loop.who)
	via      *upConn            // the upstream connection it goes over
	req      []byte             // the request as sent, for a retry
	hostAt   int                // where up's Host is in req
	head     bool               // HEAD: the answer has no body
	retried  bool               // sent again after a pooled connection closed
	gotBytes bool               // the upstream said something: never sent again
	sentHead bool               // the answer's head went to the client
	interims int                // interim (1xx) answers passed on
	status   int
	bytes    int64
	start    time.Time // for the access log
	route    int       // the host's route, for its counts
	deadline int64     // the request timeout; 0 is none
	readBy   int64     // the upstream's next bytes are due (read_timeout)
	rt       int64     // read_timeout
	entry    app.Entry // the access log's fields, copied
	logBuf   []byte
	tab      *Table // the table the request began under (swap.go)
}

// newExchange prepares the forwarding of l.req (head is its raw head) to
// one of px's upstreams, copying all it needs of the request.
func (l *Loop) newExchange(c *conn, px *app.FastProxy, head []byte, start time.Time) *exchange {
	r := &l.req
	var ex *exchange
	if n := len(l.exFree); n > 0 {
		ex = l.exFree[n-1]
		l.exFree = l.exFree[:n-1]
	} else {
		ex = &exchange{}
	}
	*ex = exchange{c: c, px: px, head: r.Method == "HEAD", start: start, rt: int64(px.Group.ReadTimeout()),
		route: l.host.Route(r.Host, r.Path), req: ex.req[:0], logBuf: ex.logBuf[:0], tried: ex.tried[:0]}
	if l.cfg.Deadline > 0 {
		ex.deadline = l.now + int64(l.cfg.Deadline)
	}
	ex.readBy = ex.due(l.now)
	ex.tab = l.holdTable()
	ex.client = l.client
	f := h1.Forward{Remote: c.remote, Chain: l.chain, UseChain: l.useChain, RequestID: h1.Str(l.reqID), Proxy: px, HTTPS: c.tls != nil}
	if ex.up = px.Group.Pick(clientIP(ex.client), nil); ex.up != nil {
		ex.up.Begin()
		ex.tried = append(ex.tried, ex.up)
		f.Host = ex.up.Host
	}
	ex.req, ex.hostAt = h1.AppendUpstreamRequest(ex.req, r, head, &f)
	if l.access != nil {
		// The request's strings live in the read buffer; the log line is
		// written when the answer ends.
		b := ex.logBuf
		b = append(b, r.Target...)
		b = append(b, r.Host...)
		b = append(b, r.Referer...)
		b = append(b, r.UserAgent...)
		b = append(b, l.reqID...)
		ex.logBuf = b
		o := 0
		cut := func(n int) string { s := h1.Str(b[o : o+n]); o += n; return s }
		ex.entry = app.Entry{Remote: ex.client, Method: r.Method, Proto: r.Proto()}
		ex.entry.RequestURI = cut(len(r.Target))
		ex.entry.Path, ex.entry.RawQuery = ex.entry.RequestURI, ""
		if i := bytes.IndexByte([]byte(ex.entry.RequestURI), '?'); i >= 0 {
			ex.entry.Path, ex.entry.RawQuery = ex.entry.RequestURI[:i], ex.entry.RequestURI[i+1:]
		}
		ex.entry.Host = cut(len(r.Host))
		ex.entry.Referer = cut(len(r.Referer))
		ex.entry.UserAgent = cut(len(r.UserAgent))
		ex.entry.RequestID = cut(len(l.reqID))
	}
	return ex
}

// due is when the upstream's next bytes are due, from now.
func (ex *exchange) due(now int64) int64 {
	by := now + ex.rt
	if ex.deadline != 0 {
		by = min(by, ex.deadline)
	}
	return by
}

// clientIP is the IP of an "ip:port" address, without allocating.
func clientIP(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		return strings.TrimSuffix(strings.TrimPrefix(remote[:i], "["), "]")
	}
	return ""
}

// startProxy sends ex. Answers to earlier pipelined requests are in c.out
// already.
func (l *Loop) startProxy(ex *exchange) {
	c := ex.c
	c.px = ex
	c.state = connProxy
	c.deadline = 0
	if ex.up == nil {
		l.log.Warn("upstream failed", "err", upstream.ErrNoUpstream)
		l.proxyFailed(ex, http.StatusServiceUnavailable)
		return
	}
	l.send(ex, l.upstreamConn(ex.up, ex.px.Group.ConnectTimeout()))
}

// retry sends ex to another upstream after its own failed before any
// byte of an answer, when retries allow and one is healthy.
func (l *Loop) retry(ex *exchange, why string) bool {
	g := ex.px.Group
	if len(ex.tried) > g.Retries() {
		return false
	}
	m := g.Pick(clientIP(ex.client), ex.tried)
	if m == nil {
		return false
	}
	l.log.Info("upstream failed; trying another", "upstream", ex.up.Name, "err", why, "next", m.Name)
	if m.Host != ex.up.Host {
		old := len(ex.up.Host)
		rest := append([]byte(nil), ex.req[ex.hostAt+old:]...)
		ex.req = append(append(ex.req[:ex.hostAt], m.Host...), rest...)
	}
	ex.up.End()
	ex.up = m
	m.Begin()
	ex.tried = append(ex.tried, m)
	ex.retried, ex.gotBytes = false, false
	ex.readBy = ex.due(l.now)
	l.send(ex, l.upstreamConn(m, g.ConnectTimeout()))
	return true
}

// readDuringProxy takes what a client sends while its proxied request is
// answered: the next pipelined requests, kept for later, or its close. A
// client that sends more than a head's worth is not read further until
// the answer is done.
func (l *Loop) readDuringProxy(c *conn) {
	if c.muted {
		// Muted, epoll reports only a hang-up: the client is gone.
		l.close(c)
		return
	}
	if c.tls != nil {
		l.readDuringProxyTLS(c)
		return
	}
	if cap(c.in)-len(c.in) < 2048 {
		c.in = append(c.in, make([]byte, 4096)...)[:len(c.in)]
	}
	n, st := read(c.fd, c.in[len(c.in):cap(c.in)])
	if st == ioAgain {
		return
	}
	if st == ioClosed {
		l.close(c)
		return
	}
	c.in = c.in[:len(c.in)+n]
	c.waiting = true
	if len(c.in) >= l.maxHead {
		c.muted = true
		l.setEvents(c.fd, 0)
	}
}

// upRead reads the upstream's answer and passes it on.
func (l *Loop) upRead(u *upConn) {
	if u.paused {
		return
	}
	ex := u.ex
	c := ex.c
	for {
		n, st := read(u.fd, l.rbuf)
		if st == ioAgain {
			return
		}
		if st == ioClosed {
			if u.state == upBody && u.frame == frameClose {
				l.proxyDone(u, false)
				return
			}
			l.upFailed(u, !ex.gotBytes, "connection closed before the answer")
			return
		}
		data := l.rbuf[:n]
		ex.gotBytes = true
		ex.readBy = ex.due(l.now)
		if u.state == upHead {
			u.in = append(u.in, data...)
			var ok bool
			if data, ok = l.upHead(u); !ok || u.state == upHead {
				return
			}
		}
		if !l.upBody(u, data) {
			return
		}
		if u.ex == nil || c.px != ex {
			return // done, or failed
		}
		if len(c.out) > 0 || c.unsentTLS() {
			// The client has not taken the last of it: wait for it.
			u.paused = true
			l.upEvents(u, 0)
			return
		}
	}
}

// answerExtra is room for what the loop adds to an answer's head (Date,
// Connection), so that the pooled buffer seldom has to grow.
const answerExtra = 256

// maxInterims is how many interim (1xx) answers one request may get
// before the final one, as net/http's transport allows.
const maxInterims = 5

// upHead parses the answer's head from u.in once complete and sends the
// client its head. It returns the body bytes that came with it, and false
// when the exchange ended.
func (l *Loop) upHead(u *upConn) ([]byte, bool) {
	ex := u.ex
	for {
		h, n, err := h1.ParseAnswer(u.in)
		if err != nil {
			l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", err)
			l.upFailedCode(u, http.StatusBadGateway)
			return nil, false
		}
		if n == 0 {
			if len(u.in) > upMaxHead {
				l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", "answer head too long")
				l.upFailedCode(u, http.StatusBadGateway)
				return nil, false
			}
			return nil, true
		}
		c := ex.c
		if h.Code >= 100 && h.Code < 200 {
			if h.Code == http.StatusSwitchingProtocols {
				l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", "101 to a request without Upgrade")
				l.upFailedCode(u, http.StatusBadGateway)
				return nil, false
			}
			if ex.interims++; ex.interims > maxInterims {
				// An endless stream of them would grow c.out without bound.
				l.log.Warn("upstream failed", "upstream", ex.up.Host, "err", "more than 5 interim answers")
				l.upFailedCode(u, http.StatusBadGateway)
				return nil, false
			}
			// An interim answer (103 Early Hints) goes on as it is.
			c.out = h1.AppendAnswerHead(l.outRoom(c, n+answerExtra), &h, u.in[:n], l.dateLine(), h1.ConnNone, true)
			u.in = u.in[:copy(u.in, u.in[n:])]
			continue
		}
		ex.sentHead, ex.status = true, h.Code
		u.keep = h.Keep
		switch {
		case ex.head || h.Code == http.StatusNoContent || h.Code == http.StatusNotModified:
			u.frame = frameNone
		case h.Chunked:
			u.frame = frameChunked
			u.chunks = h1.ChunkScanner{}
		case h.Length >= 0:
			u.frame, u.left = frameLength, h.Length
		default:
			u.frame = frameClose
			u.keep = false
		}
		closeClient := c.closeAfter || l.draining || u.frame == frameClose
		c.closeAfter = closeClient
		h.Policy = ex.px.Headers()
		c.out = h1.AppendAnswerHead(l.outRoom(c, n+answerExtra), &h, u.in[:n], l.dateLine(), h1.Framing(1, closeClient, l.draining), false)
		u.state = upBody
		body := append(l.wbuf[:0], u.in[n:]...)
		l.wbuf = body[:0]
		u.in = u.in[:0]
		if u.frame == frameNone || u.frame == frameLength && u.left == 0 {
			if len(body) > 0 {
				u.keep = false // more than the answer: not to be trusted again
			}
			l.proxyDone(u, u.keep)
			return nil, false
		}
		return body, true
	}
}

// upBody passes body bytes to the client, and ends the exchange at the
// body's end. It reports false when the exchange ended.
func (l *Loop) upBody(u *upConn, data []byte) bool {
	ex := u.ex
	c := ex.c
	done := false
	switch u.frame {
	case frameLength:
		if int64(len(data)) >= u.left {
			if int64(len(data)) > u.left {
				u.keep = false
			}
			data = data[:u.left]
			done = true
		}
		u.left -= int64(len(data))
		ex.bytes += int64(len(data))
	case frameChunked:
		n, payload, end, err := u.chunks.Scan(data)
		if err != nil {
			l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", err)
			l.proxyAbort(u)
			return false
		}
		if end && n < len(data) {
			u.keep = false
		}
		data = data[:n]
		ex.bytes += payload
		done = end
	case frameClose:
		ex.bytes += int64(len(data))
	}
	c.out = append(l.outRoom(c, len(data)), data...)
	if done {
		l.proxyDone(u, u.keep)
		return false
	}
	l.flushProxy(c)
	return c.px == ex
}

// flushProxy writes what the client has to take; when it cannot take it
// all, the upstream waits (see upRead).
func (l *Loop) flushProxy(c *conn) {
	if c.tls != nil {
		l.flushProxyTLS(c)
		return
	}
	n, st := write(c.fd, c.out, unix.MSG_NOSIGNAL)
	c.out = c.out[:copy(c.out, c.out[n:])]
	c.wrote += int64(n)
	switch st {
	case ioOK:
		l.releaseOut(c)
	case ioAgain:
		l.waitWritable(c, n > 0)
	case ioClosed:
		l.close(c) // and the exchange with it
	}
}

// resumeProxy is flush's call once the client took everything while an
// exchange runs: the upstream may go on.
func (l *Loop) resumeProxy(c *conn) {
	if c.writing {
		c.writing = false
		if c.muted {
			l.setEvents(c.fd, 0)
		} else {
			l.setEvents(c.fd, poll.In)
		}
	}
	if u := c.px.via; u != nil && u.paused {
		u.paused = false
		if u.detached {
			u.detached = false
			u.events = poll.In
			l.poll.Add(u.fd, unix.EPOLLIN)
		} else {
			l.upEvents(u, poll.In)
		}
		ex := c.px
		ex.readBy = ex.due(l.now) // the wait was the client's
		l.upRead(u)
	}
}

// proxyDone ends an exchange whose answer came whole; keep says whether
// the upstream connection may serve another.
func (l *Loop) proxyDone(u *upConn, keep bool) {
	ex := u.ex
	c := ex.c
	u.ex = nil
	if keep && len(l.upIdleOf(u.id)) < l.upBurst {
		u.state, u.since, u.reused = upIdle, l.now, true
		u.in = u.in[:0] // both buffers stay for the next exchange
		l.upIdle[u.id] = append(l.upIdle[u.id], u)
		l.upEvents(u, poll.In)
	} else {
		l.dropUp(u)
	}
	l.finishExchange(c, ex)
}

// finishExchange logs and counts the request, then lets the client's
// connection go on.
func (l *Loop) finishExchange(c *conn, ex *exchange) {
	if a := ex.tab.Access; a != nil {
		e := ex.entry
		e.Status, e.Bytes, e.Start, e.End = ex.status, ex.bytes, ex.start, a.Now()
		a.Log(&e)
	}
	ex.via = nil // pooled or closed already
	began := c.headAt
	l.endExchange(c)
	l.host.Served(ex.route, ex.status, ex.bytes, began)
	l.flush(c)
}

// upFailed handles a connection that broke before the answer's head
// came. fresh says nothing was read: on a reused connection that is the
// upstream closing it while idle, and the request goes again on a new
// one; otherwise it counts against the upstream, and the request goes to
// another while it had no byte of an answer.
func (l *Loop) upFailed(u *upConn, fresh bool, why string) {
	ex := u.ex
	if ex == nil {
		l.dropUp(u)
		return
	}
	if ex.sentHead {
		// The client has part of an answer: it can only be cut.
		l.log.Warn("upstream failed mid-answer", "upstream", ex.up.Name)
		ex.px.Group.Failed(ex.up, why)
		l.proxyAbort(u)
		return
	}
	if fresh && u.reused && !ex.retried {
		ex.retried = true
		l.dropUp(u)
		l.send(ex, l.dial(ex.up, ex.px.Group.ConnectTimeout()))
		return
	}
	ex.px.Group.Failed(ex.up, why)
	l.dropUp(u)
	if !ex.gotBytes && l.retry(ex, why) {
		return
	}
	l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", why)
	l.proxyFailed(ex, http.StatusBadGateway)
}

func (l *Loop) upFailedCode(u *upConn, code int) {
	ex := u.ex
	l.dropUp(u)
	l.proxyFailed(ex, code)
}

// proxyFailed answers the client with code, as the proxy app's error
// handler does.
func (l *Loop) proxyFailed(ex *exchange, code int) {
	c := ex.c
	var resp app.FastResponse
	resp.Reset()
	ex.px.StatusFast(&resp, code)
	c.closeAfter = c.closeAfter || l.draining
	// A proxied request is HTTP/1.1 (see h1.Request's Forwardable).
	c.out = h1.AppendHead(l.outRoom(c, len(resp.Head)+len(resp.Body)+answerExtra), resp.Head, 1)
	c.out = h1.EndHead(c.out, l.dateLine(), false, h1.Framing(1, c.closeAfter, l.draining))
	ex.status = code
	if !ex.head {
		c.out = append(c.out, resp.Body...)
		ex.bytes = int64(len(resp.Body))
	}
	l.finishExchange(c, ex)
}

// proxyAbort cuts both connections of an exchange.
func (l *Loop) proxyAbort(u *upConn) {
	ex := u.ex
	l.dropUp(u)
	l.close(ex.c) // and the exchange with it
}

// endExchange ends c's exchange: its upstream connection, if it still
// has one, is closed, and the record kept for the next.
func (l *Loop) endExchange(c *conn) {
	ex := c.px
	if ex.via != nil {
		l.dropUp(ex.via)
	}
	if ex.up != nil {
		ex.up.End()
	}
	clear(ex.tried)
	l.dropTable(ex.tab)
	ex.c, ex.px, ex.up, ex.via, ex.tried, ex.tab = nil, nil, nil, nil, ex.tried[:0], nil
	c.px = nil
	if len(l.exFree) < loopFree {
		l.exFree = append(l.exFree, ex)
	}
}
