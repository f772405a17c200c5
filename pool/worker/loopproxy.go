package worker

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// The event loop's proxy forwards a plain GET or HEAD to a proxy route's
// upstream over a pool of keep-alive connections that live in the same
// epoll set, and streams the answer back, with what httputil.ReverseProxy
// and net/http do to the headers on the way: hop-by-hop headers dropped
// both ways, X-Forwarded-For/-Host/-Proto set, the upstream's Host, the
// status line rewritten with its standard text, a Date added if missing.
// The upstream's body framing is kept: a Content-Length body is copied, a
// chunked one passed through chunk by chunk, one delimited by the
// upstream closing ends the client's connection too.
//
// Failures answer as the proxy app does: 502, or 504 for a timeout (dial,
// the upstream's head, or the request timeout); a request on a pooled
// connection that the upstream had closed is sent again on a new one, as
// net/http's transport does for an idempotent request. Once the answer's
// head has reached the client, a failure can only cut the connection.

// Upstream limits, as the proxy app's transport has them.
const (
	upDialTimeout = 5 * time.Second
	upHeadTimeout = 60 * time.Second
	upIdleTimeout = 90 * time.Second
	upIdleMax     = 256
	upMaxHead     = 64 << 10
)

const (
	upConnecting = iota
	upSending
	upHead
	upBody
	upIdle
)

// Body framings of an upstream answer.
const (
	frameNone = iota
	frameLength
	frameChunked
	frameClose
)

// upConn is a connection to an upstream.
type upConn struct {
	fd     int
	id     int // the upstream's FastUpstream.ID
	state  int
	reused bool // served an exchange before this one
	ex     *proxyExchange
	out    []byte // the request being written
	outAt  int    // how much of out is written
	in     []byte // an answer's head so far
	paused bool   // not reading: the client has not taken what came
	events uint32 // what epoll reports for it
	// detached: out of the epoll set while paused, after a hang-up.
	detached bool
	since    int64 // idle since
	slot     int   // in loop.ups
	keep     bool  // the answer allows reuse
	frame    int
	left     int64 // frameLength: bytes to go
	chunks   chunkScanner
}

// proxyExchange is one forwarded request.
type proxyExchange struct {
	c        *loopConn
	up       *app.FastUpstream
	req      []byte // the request as sent, for a retry
	head     bool   // HEAD: the answer has no body
	retried  bool
	gotBytes bool // the upstream said something: never sent again
	sentHead bool // the answer's head went to the client
	status   int
	bytes    int64
	start    time.Time // for the access log
	began    int64     // the loop's clock when the request was read
	route    int       // for the metrics
	deadline int64     // the request timeout; 0 is none
	headBy   int64     // the upstream's head is due
	entry    app.Entry // the access log's fields, copied
	logBuf   []byte
}

// newExchange prepares the forwarding of l.req (head is its raw head) to
// up, copying all it needs of the request.
func (l *loop) newExchange(c *loopConn, up *app.FastUpstream, head []byte, start time.Time) *proxyExchange {
	r := &l.req
	ex := &c.pxv
	*ex = proxyExchange{c: c, up: up, head: r.Method == "HEAD", start: start, headBy: l.now + int64(upHeadTimeout),
		began: l.now, route: l.w.metrics.route(r.Path), req: ex.req[:0], logBuf: ex.logBuf[:0]}
	if l.w.limits.deadline > 0 {
		ex.deadline = l.now + int64(l.w.limits.deadline)
		ex.headBy = min(ex.headBy, ex.deadline)
	}
	ex.req = buildUpstreamRequest(ex.req, r, head, up, c.remote)
	if l.access != nil {
		// The request's strings live in the read buffer; the log line is
		// written when the answer ends.
		b := ex.logBuf
		b = append(b, r.target...)
		b = append(b, r.host...)
		b = append(b, r.referer...)
		b = append(b, r.userAgent...)
		ex.logBuf = b
		o := 0
		cut := func(n int) string { s := str(b[o : o+n]); o += n; return s }
		ex.entry = app.Entry{Remote: c.remote, Method: r.Method, Proto: r.proto()}
		ex.entry.RequestURI = cut(len(r.target))
		ex.entry.Path, ex.entry.RawQuery = ex.entry.RequestURI, ""
		if i := bytes.IndexByte([]byte(ex.entry.RequestURI), '?'); i >= 0 {
			ex.entry.Path, ex.entry.RawQuery = ex.entry.RequestURI[:i], ex.entry.RequestURI[i+1:]
		}
		ex.entry.Host = cut(len(r.host))
		ex.entry.Referer = cut(len(r.referer))
		ex.entry.UserAgent = cut(len(r.userAgent))
	}
	return ex
}

// startProxy sends ex. Answers to earlier pipelined requests are in c.out
// already.
func (l *loop) startProxy(ex *proxyExchange) {
	c := ex.c
	c.px = ex
	c.state = lcProxy
	c.deadline = 0
	l.send(ex, l.upstreamConn(ex.up))
}

// readDuringProxy takes what a client sends while its proxied request is
// answered: the next pipelined requests, kept for later, or its close. A
// client that sends more than a head's worth is not read further until
// the answer is done.
func (l *loop) readDuringProxy(c *loopConn) {
	if c.muted {
		// Muted, epoll reports only a hang-up: the client is gone.
		l.close(c)
		return
	}
	if cap(c.in)-len(c.in) < 2048 {
		c.in = append(c.in, make([]byte, 4096)...)[:len(c.in)]
	}
	n, err := rawsys.Read(c.fd, c.in[len(c.in):cap(c.in)])
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil || n == 0 {
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

// setEvents changes what epoll reports for fd.
func (l *loop) setEvents(fd int, events uint32) {
	rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

// upEvents changes what epoll reports for u, if it differs.
func (l *loop) upEvents(u *upConn, events uint32) {
	if u.events != events {
		u.events = events
		l.setEvents(u.fd, events)
	}
}

// hopByHop are the headers that belong to one connection, not to the
// request or answer (RFC 9110 7.6.1), which a proxy drops; with them the
// ones the proxy sets itself.
func dropForward(name []byte) bool {
	switch len(name) {
	case 2:
		return lowerIs(name, "te")
	case 4:
		return lowerIs(name, "host")
	case 7:
		return lowerIs(name, "trailer") || lowerIs(name, "upgrade")
	case 10:
		return lowerIs(name, "connection") || lowerIs(name, "keep-alive") || lowerIs(name, "user-agent")
	case 14:
		return lowerIs(name, "content-length")
	case 15:
		return lowerIs(name, "x-forwarded-for")
	case 16:
		return lowerIs(name, "proxy-connection") || lowerIs(name, "x-forwarded-host")
	case 17:
		return lowerIs(name, "transfer-encoding") || lowerIs(name, "x-forwarded-proto")
	case 18:
		return lowerIs(name, "proxy-authenticate")
	case 19:
		return lowerIs(name, "proxy-authorization")
	}
	return false
}

// buildUpstreamRequest appends the request the upstream gets.
func buildUpstreamRequest(b []byte, r *h1Request, head []byte, up *app.FastUpstream, remote string) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, up.Host...)
	b = append(b, "\r\n"...)
	if r.userAgent != "" {
		b = append(b, "User-Agent: "...)
		b = append(b, r.userAgent...)
		b = append(b, "\r\n"...)
	}
	var xffBuf [128]byte
	xff := xffBuf[:0]
	lines := head[bytes.IndexByte(head, '\n')+1:]
	for len(lines) > 2 {
		nl := bytes.IndexByte(lines, '\n')
		line := lines[:nl-1]
		lines = lines[nl+1:]
		colon := bytes.IndexByte(line, ':')
		name, v := line[:colon], bytes.Trim(line[colon+1:], " \t")
		if len(name) == 15 && lowerIs(name, "x-forwarded-for") {
			if len(xff) > 0 {
				xff = append(xff, ", "...)
			}
			xff = append(xff, v...)
			continue
		}
		if dropForward(name) {
			continue
		}
		b = appendCanonical(b, name)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	if ip, _, err := net.SplitHostPort(remote); err == nil && ip != "" {
		if len(xff) > 0 {
			xff = append(xff, ", "...)
		}
		xff = append(xff, ip...)
	}
	if len(xff) > 0 {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, xff...)
		b = append(b, "\r\n"...)
	}
	if r.host != "" {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, r.host...)
		b = append(b, "\r\n"...)
	}
	return append(b, "X-Forwarded-Proto: http\r\n\r\n"...)
}

// appendCanonical appends a header name as net/http spells it: each
// dash-separated word capitalized.
func appendCanonical(b, name []byte) []byte {
	upper := true
	for _, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

// upstreamConn returns a pooled connection to up, or a new one being
// dialed; nil when a socket cannot even be made.
func (l *loop) upstreamConn(up *app.FastUpstream) *upConn {
	for up.ID < len(l.upIdle) && len(l.upIdle[up.ID]) > 0 {
		idle := l.upIdle[up.ID]
		u := idle[len(idle)-1]
		l.upIdle[up.ID] = idle[:len(idle)-1]
		// An idle connection must have nothing to say: a close, or bytes
		// after its last answer, may be waiting in this very pass, ahead
		// of the epoll event that would retire it.
		if _, err := rawsys.Peek(u.fd); err != unix.EAGAIN {
			u.state = upHead // not idle any more: dropUp need not look for it
			l.dropUp(u)
			continue
		}
		u.reused = true
		return u
	}
	return l.dial(up)
}

func (l *loop) dial(up *app.FastUpstream) *upConn {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := up.IP.To4(); ip4 != nil {
		a := &unix.SockaddrInet4{Port: up.Port}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		a := &unix.SockaddrInet6{Port: up.Port}
		copy(a.Addr[:], up.IP.To16())
		sa, family = a, unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.w.log.Warn("upstream failed", "upstream", up.Host, "err", err)
		return nil
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	u := &upConn{fd: fd, id: up.ID, state: upConnecting, events: unix.EPOLLOUT}
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		rawsys.Close(fd)
		l.w.log.Warn("upstream failed", "upstream", up.Host, "err", err)
		return nil
	}
	if err := rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}); err != nil {
		rawsys.Close(fd)
		return nil
	}
	for fd >= len(l.upByFD) {
		l.upByFD = append(l.upByFD, make([]*upConn, len(l.upByFD)+64)...)
	}
	l.upByFD[fd] = u
	u.slot = len(l.ups)
	l.ups = append(l.ups, u)
	return u
}

// send starts ex on u; a nil u fails it.
func (l *loop) send(ex *proxyExchange, u *upConn) {
	if u == nil {
		l.proxyFailed(ex, http.StatusBadGateway)
		return
	}
	ex.c.pxUp = u
	u.ex = ex
	u.out, u.outAt = append(u.out[:0], ex.req...), 0
	u.in = u.in[:0]
	u.paused = false
	if u.state == upConnecting {
		return // EPOLLOUT says when
	}
	u.state = upSending
	l.upWrite(u)
}

func (l *loop) upConnOf(fd int) *upConn {
	if fd < len(l.upByFD) {
		return l.upByFD[fd]
	}
	return nil
}

// upEvent handles epoll's news about an upstream connection.
func (l *loop) upEvent(u *upConn, events uint32) {
	switch u.state {
	case upConnecting:
		errno, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil || errno != 0 {
			l.upFailed(u, false)
			return
		}
		u.state = upSending
		l.upWrite(u)
	case upSending:
		l.upWrite(u)
	case upIdle:
		// An idle connection has nothing to say: this is its close.
		l.dropUp(u)
	default:
		if u.paused {
			// A hang-up while the client is slow: take it out of the
			// set (it would be reported again and again); resumeProxy
			// puts it back and reads what it says.
			rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, u.fd, nil)
			u.detached = true
			return
		}
		l.upRead(u)
	}
}

func (l *loop) upWrite(u *upConn) {
	for u.outAt < len(u.out) {
		n, err := rawsys.Send(u.fd, u.out[u.outAt:], unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.upEvents(u, unix.EPOLLOUT)
			return
		}
		if err != nil {
			l.upFailed(u, true)
			return
		}
		u.outAt += n
	}
	u.state = upHead
	l.upEvents(u, unix.EPOLLIN)
}

// upRead reads the upstream's answer and passes it on.
func (l *loop) upRead(u *upConn) {
	if u.paused {
		return
	}
	ex := u.ex
	c := ex.c
	for {
		n, err := rawsys.Read(u.fd, l.rbuf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil || n == 0 {
			if u.state == upBody && u.frame == frameClose {
				l.proxyDone(u, false)
				return
			}
			l.upFailed(u, !ex.gotBytes)
			return
		}
		data := l.rbuf[:n]
		ex.gotBytes = true
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
		if len(c.out) > 0 {
			// The client has not taken the last of it: wait for it.
			u.paused = true
			l.upEvents(u, 0)
			return
		}
	}
}

// upHead parses the answer's head from u.in once complete and sends the
// client its head. It returns the body bytes that came with it, and false
// when the exchange ended.
func (l *loop) upHead(u *upConn) ([]byte, bool) {
	ex := u.ex
	for {
		h, n, err := parseUpstreamHead(u.in)
		if err != nil {
			l.w.log.Warn("upstream failed", "upstream", ex.up.Host, "err", err)
			l.upFailedCode(u, http.StatusBadGateway)
			return nil, false
		}
		if n == 0 {
			if len(u.in) > upMaxHead {
				l.w.log.Warn("upstream failed", "upstream", ex.up.Host, "err", "answer head too long")
				l.upFailedCode(u, http.StatusBadGateway)
				return nil, false
			}
			return nil, true
		}
		c := ex.c
		if h.code >= 100 && h.code < 200 {
			if h.code == http.StatusSwitchingProtocols {
				l.w.log.Warn("upstream failed", "upstream", ex.up.Host, "err", "101 to a request without Upgrade")
				l.upFailedCode(u, http.StatusBadGateway)
				return nil, false
			}
			// An interim answer (103 Early Hints) goes on as it is.
			c.out = appendUpstreamHead(c.out, &h, u.in[:n], l.dateLine(), false, true)
			u.in = u.in[:copy(u.in, u.in[n:])]
			continue
		}
		ex.sentHead, ex.status = true, h.code
		u.keep = h.keep
		switch {
		case ex.head || h.code == http.StatusNoContent || h.code == http.StatusNotModified:
			u.frame = frameNone
		case h.chunked:
			u.frame = frameChunked
			u.chunks = chunkScanner{}
		case h.length >= 0:
			u.frame, u.left = frameLength, h.length
		default:
			u.frame = frameClose
			u.keep = false
		}
		closeClient := c.closeAfter || l.draining || u.frame == frameClose
		c.closeAfter = closeClient
		c.out = appendUpstreamHead(c.out, &h, u.in[:n], l.dateLine(), closeClient, false)
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
func (l *loop) upBody(u *upConn, data []byte) bool {
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
		n, payload, end, err := u.chunks.scan(data)
		if err != nil {
			l.w.log.Warn("upstream failed", "upstream", ex.up.Host, "err", err)
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
	c.out = append(c.out, data...)
	if done {
		l.proxyDone(u, u.keep)
		return false
	}
	l.flushProxy(c)
	return c.px == ex
}

// flushProxy writes what the client has to take; when it cannot take it
// all, the upstream waits (see upRead).
func (l *loop) flushProxy(c *loopConn) {
	for len(c.out) > 0 {
		n, err := rawsys.Send(c.fd, c.out, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.waitWritable(c)
			return
		}
		if err != nil {
			if c.pxUp != nil {
				l.dropUp(c.pxUp)
			}
			c.px, c.pxUp = nil, nil
			l.close(c)
			return
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
}

// resumeProxy is flush's call once the client took everything while an
// exchange runs: the upstream may go on.
func (l *loop) resumeProxy(c *loopConn) {
	if c.writing {
		c.writing = false
		if c.muted {
			l.setEvents(c.fd, 0)
		} else {
			l.setEvents(c.fd, unix.EPOLLIN)
		}
	}
	if u := c.pxUp; u != nil && u.paused {
		u.paused = false
		if u.detached {
			u.detached = false
			u.events = unix.EPOLLIN
			rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, u.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(u.fd)})
		} else {
			l.upEvents(u, unix.EPOLLIN)
		}
		l.upRead(u)
	}
}

// proxyDone ends an exchange whose answer came whole; keep says whether
// the upstream connection may serve another.
func (l *loop) proxyDone(u *upConn, keep bool) {
	ex := u.ex
	c := ex.c
	u.ex = nil
	if keep && len(l.upIdleOf(u.id)) < upIdleMax {
		u.state, u.since, u.reused = upIdle, l.now, true
		u.in = u.in[:0] // both buffers stay for the next exchange
		l.upIdle[u.id] = append(l.upIdle[u.id], u)
		l.upEvents(u, unix.EPOLLIN)
	} else {
		l.dropUp(u)
	}
	l.finishExchange(c, ex)
}

// finishExchange logs and counts the request, then lets the client's
// connection go on.
func (l *loop) finishExchange(c *loopConn, ex *proxyExchange) {
	c.px, c.pxUp = nil, nil
	if l.access != nil {
		e := ex.entry
		e.Status, e.Bytes, e.Start, e.End = ex.status, ex.bytes, ex.start, l.access.Now()
		l.access.Log(&e)
	}
	l.w.servedRoute(ex.route, ex.status, ex.bytes, ex.began)
	l.flush(c)
}

// upFailed handles a connection that broke before the answer's head came.
// fresh says nothing was read: on a reused connection that is the
// upstream closing it while idle, and the request goes again on a new one.
func (l *loop) upFailed(u *upConn, fresh bool) {
	ex := u.ex
	if ex == nil {
		l.dropUp(u)
		return
	}
	if ex.sentHead {
		// The client has part of an answer: it can only be cut.
		l.w.log.Warn("upstream failed mid-answer", "upstream", ex.up.Host)
		l.proxyAbort(u)
		return
	}
	if fresh && u.reused && !ex.retried {
		ex.retried = true
		l.dropUp(u)
		l.send(ex, l.dial(ex.up))
		return
	}
	l.w.log.Warn("upstream failed", "upstream", ex.up.Host, "err", "connection closed before the answer")
	l.upFailedCode(u, http.StatusBadGateway)
}

func (l *loop) upFailedCode(u *upConn, code int) {
	ex := u.ex
	l.dropUp(u)
	l.proxyFailed(ex, code)
}

// proxyFailed answers the client with code, as the proxy app's error
// handler does.
func (l *loop) proxyFailed(ex *proxyExchange, code int) {
	c := ex.c
	var resp app.FastResponse
	resp.Reset()
	app.StatusFast(&resp, code)
	c.closeAfter = c.closeAfter || l.draining
	c.out = append(c.out, resp.Head...)
	c.out = append(c.out, l.dateLine()...)
	if c.closeAfter {
		c.out = append(c.out, "Connection: close\r\n"...)
	}
	c.out = append(c.out, "\r\n"...)
	ex.status = code
	if !ex.head {
		c.out = append(c.out, resp.Body...)
		ex.bytes = int64(len(resp.Body))
	}
	l.finishExchange(c, ex)
}

// proxyAbort cuts both connections of an exchange.
func (l *loop) proxyAbort(u *upConn) {
	ex := u.ex
	l.dropUp(u)
	c := ex.c
	c.px, c.pxUp = nil, nil
	l.close(c)
}

func (l *loop) upIdleOf(id int) []*upConn {
	for id >= len(l.upIdle) {
		l.upIdle = append(l.upIdle, nil)
	}
	return l.upIdle[id]
}

// dropUp closes an upstream connection.
func (l *loop) dropUp(u *upConn) {
	if u.state == upIdle {
		idle := l.upIdleOf(u.id)
		for i, x := range idle {
			if x == u {
				l.upIdle[u.id] = append(idle[:i], idle[i+1:]...)
				break
			}
		}
	}
	if u.ex != nil && u.ex.c.pxUp == u {
		u.ex.c.pxUp = nil
	}
	u.ex = nil
	rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, u.fd, nil)
	rawsys.Close(u.fd)
	l.upByFD[u.fd] = nil
	last := l.ups[len(l.ups)-1]
	l.ups[u.slot] = last
	last.slot = u.slot
	l.ups[len(l.ups)-1] = nil
	l.ups = l.ups[:len(l.ups)-1]
	u.state = -1
}

// sweepUpstreams applies the upstream timeouts.
func (l *loop) sweepUpstreams() {
	for i := 0; i < len(l.ups); {
		u := l.ups[i]
		switch {
		case u.state == upIdle && l.now-u.since >= int64(upIdleTimeout):
			l.dropUp(u)
			continue
		case u.ex != nil && u.state == upConnecting && l.now-u.ex.c.headAt >= int64(upDialTimeout):
			l.w.log.Warn("upstream failed", "upstream", u.ex.up.Host, "err", "dial timeout")
			l.upFailedCode(u, http.StatusGatewayTimeout)
			continue
		case u.ex != nil && !u.ex.sentHead && l.now >= u.ex.headBy:
			l.w.log.Warn("upstream failed", "upstream", u.ex.up.Host, "err", "timeout awaiting the answer")
			l.upFailedCode(u, http.StatusGatewayTimeout)
			continue
		case u.ex != nil && u.ex.deadline != 0 && l.now >= u.ex.deadline:
			l.w.log.Warn("upstream failed mid-answer", "upstream", u.ex.up.Host, "err", "request timeout")
			l.proxyAbort(u)
			continue
		}
		i++
	}
}

// upstreamHead is a parsed answer head.
type upstreamHead struct {
	code    int
	minor   int
	length  int64 // -1: none
	chunked bool
	keep    bool // the connection may serve another request
	hasDate bool
	drop    [][]byte // headers the Connection header names
}

// parseUpstreamHead parses the answer head at the start of b, with lines
// ending in CRLF or LF as net/http's transport accepts them. n is 0 while
// the head is incomplete.
func parseUpstreamHead(b []byte) (h upstreamHead, n int, err error) {
	h.length = -1
	i := 0
	line := func() ([]byte, bool) {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return nil, false
		}
		ln := b[i : i+j]
		i += j + 1
		if len(ln) > 0 && ln[len(ln)-1] == '\r' {
			ln = ln[:len(ln)-1]
		}
		return ln, true
	}
	status, ok := line()
	if !ok {
		return h, 0, nil
	}
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || (status[7] != '0' && status[7] != '1') || status[8] != ' ' {
		return h, 0, errMalformedAnswer
	}
	h.minor = int(status[7] - '0')
	code, cerr := strconv.Atoi(string(status[9:12]))
	if cerr != nil || code < 100 || code > 999 || len(status) > 12 && status[12] != ' ' {
		return h, 0, errMalformedAnswer
	}
	h.code = code
	h.keep = h.minor == 1
	for {
		ln, ok := line()
		if !ok {
			return h, 0, nil
		}
		if len(ln) == 0 {
			break
		}
		colon := bytes.IndexByte(ln, ':')
		if colon <= 0 {
			return h, 0, errMalformedAnswer
		}
		name, v := ln[:colon], bytes.Trim(ln[colon+1:], " \t")
		// As net/http's transport: a header it would not parse makes the
		// answer a 502, never bytes passed on to the client.
		for _, c := range name {
			if !tokenByte[c] {
				return h, 0, errMalformedAnswer
			}
		}
		for _, c := range v {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return h, 0, errMalformedAnswer
			}
		}
		switch {
		case lowerIs(name, "content-length"):
			cl, perr := strconv.ParseInt(string(v), 10, 64)
			if perr != nil || cl < 0 || h.length >= 0 && h.length != cl {
				return h, 0, errMalformedAnswer
			}
			h.length = cl
		case lowerIs(name, "transfer-encoding"):
			if !lowerIs(v, "chunked") {
				return h, 0, errMalformedAnswer
			}
			h.chunked = true
		case lowerIs(name, "connection"):
			for _, tok := range bytes.Split(v, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case lowerIs(tok, "close"):
					h.keep = false
				case lowerIs(tok, "keep-alive"):
					if h.minor == 0 {
						h.keep = true
					}
				case len(tok) > 0:
					h.drop = append(h.drop, tok)
				}
			}
		case lowerIs(name, "date"):
			h.hasDate = true
		}
	}
	if h.minor == 0 && h.length < 0 {
		h.keep = false
	}
	return h, i, nil
}

type answerError string

func (e answerError) Error() string { return string(e) }

const errMalformedAnswer = answerError("malformed HTTP answer from the upstream")

// appendUpstreamHead writes the client's head for an upstream answer:
// net/http's status line, the upstream's headers less the hop-by-hop
// ones, Date if the upstream gave none, and the framing.
func appendUpstreamHead(b []byte, h *upstreamHead, raw, date []byte, closeClient, interim bool) []byte {
	b = app.AppendStatusLine(b, h.code)
	lines := raw[bytes.IndexByte(raw, '\n')+1:]
	for {
		nl := bytes.IndexByte(lines, '\n')
		ln := lines[:nl]
		lines = lines[nl+1:]
		if len(ln) > 0 && ln[len(ln)-1] == '\r' {
			ln = ln[:len(ln)-1]
		}
		if len(ln) == 0 {
			break
		}
		colon := bytes.IndexByte(ln, ':')
		name, v := ln[:colon], bytes.Trim(ln[colon+1:], " \t")
		if dropAnswer(name, h.drop) || h.chunked && lowerIs(name, "content-length") {
			// With chunked framing a Content-Length is void (RFC 9112
			// 6.3); net/http drops it too.
			continue
		}
		b = appendCanonical(b, name)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	if interim {
		return append(b, "\r\n"...)
	}
	if !h.hasDate {
		b = append(b, date...)
	}
	if h.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if closeClient {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

func dropAnswer(name []byte, named [][]byte) bool {
	switch len(name) {
	case 2:
		if lowerIs(name, "te") {
			return true
		}
	case 7:
		if lowerIs(name, "trailer") || lowerIs(name, "upgrade") {
			return true
		}
	case 10:
		if lowerIs(name, "connection") || lowerIs(name, "keep-alive") {
			return true
		}
	case 16:
		if lowerIs(name, "proxy-connection") {
			return true
		}
	case 17:
		if lowerIs(name, "transfer-encoding") {
			return true
		}
	case 18:
		if lowerIs(name, "proxy-authenticate") {
			return true
		}
	case 19:
		if lowerIs(name, "proxy-authorization") {
			return true
		}
	}
	for _, d := range named {
		if bytes.EqualFold(name, d) {
			return true
		}
	}
	return false
}

// chunkScanner follows a chunked body to its end without decoding it.
type chunkScanner struct {
	state  int   // chSize, chExt, chSizeLF, chData, chDataCR, chDataLF, chTrailer...
	size   int64 // of the current chunk; data left in chData
	line   int   // length of the current trailer line
	digits int
}

const (
	chSize = iota
	chExt
	chSizeLF
	chData
	chDataCR
	chDataLF
	chTrailerStart
	chTrailerLine
	chTrailerLF
	chEndLF
)

// scan consumes b up to the body's end. It returns how many bytes belong
// to the body, the payload bytes among them, and whether the body ended.
func (s *chunkScanner) scan(b []byte) (n int, payload int64, end bool, err error) {
	for n < len(b) {
		c := b[n]
		switch s.state {
		case chSize:
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
				if s.digits == 15 {
					return n, payload, false, answerError("chunk size too large")
				}
				s.size = s.size<<4 | int64(unhex(c))
				s.digits++
			case c == ';' || c == ' ' || c == '\t':
				if s.digits == 0 {
					return n, payload, false, answerError("malformed chunk size")
				}
				s.state = chExt
			case c == '\r':
				if s.digits == 0 {
					return n, payload, false, answerError("malformed chunk size")
				}
				s.state = chSizeLF
			default:
				return n, payload, false, answerError("malformed chunk size")
			}
			n++
		case chExt:
			if c == '\r' {
				s.state = chSizeLF
			}
			n++
		case chSizeLF:
			if c != '\n' {
				return n, payload, false, answerError("malformed chunk size line")
			}
			n++
			s.digits = 0
			if s.size == 0 {
				s.state = chTrailerStart
			} else {
				s.state = chData
			}
		case chData:
			k := int64(len(b) - n)
			if k > s.size {
				k = s.size
			}
			n += int(k)
			payload += k
			s.size -= k
			if s.size == 0 {
				s.state = chDataCR
			}
		case chDataCR:
			if c != '\r' {
				return n, payload, false, answerError("malformed chunk end")
			}
			s.state = chDataLF
			n++
		case chDataLF:
			if c != '\n' {
				return n, payload, false, answerError("malformed chunk end")
			}
			s.state = chSize
			n++
		case chTrailerStart:
			if c == '\r' {
				s.state = chEndLF
			} else {
				s.state = chTrailerLine
			}
			n++
		case chTrailerLine:
			if c == '\r' {
				s.state = chTrailerLF
			}
			n++
		case chTrailerLF:
			if c != '\n' {
				return n, payload, false, answerError("malformed trailer")
			}
			s.state = chTrailerStart
			n++
		case chEndLF:
			if c != '\n' {
				return n, payload, false, answerError("malformed chunked end")
			}
			return n + 1, payload, true, nil
		}
	}
	return n, payload, false, nil
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
