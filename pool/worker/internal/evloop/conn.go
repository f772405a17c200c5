package evloop

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/h1"
	"github.com/hfork/hfork/pool/worker/internal/poll"
	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// connState is where a client connection is in its life. Every
// connection starts connIdle (accepted, silent); connReading once part of
// a head arrived; then connWriting while an answer waits for the socket,
// or connProxy while an upstream answers; back to connIdle between
// requests, or connLinger after the last answer, until it closes.
type connState uint8

const (
	connIdle      connState = iota // waiting for a request (or accepted, silent)
	connReading                    // part of a head arrived
	connWriting                    // an answer is waiting for the socket
	connLinger                     // answered and shut down; reading until the client closes
	connProxy                      // waiting for an upstream's answer
	connHandshake                  // a TLS handshake is under way (tlshs.go)
)

func (s connState) String() string {
	switch s {
	case connIdle:
		return "idle"
	case connReading:
		return "reading"
	case connWriting:
		return "writing"
	case connLinger:
		return "linger"
	case connProxy:
		return "proxy"
	case connHandshake:
		return "handshake"
	}
	return "connState(?)"
}

// conn is a client connection. It is most of what an idle connection
// costs the worker (idle ones hold no buffer; byFD and list hold a
// pointer each): the small fields share words at the end, and the whole
// fits the runtime's 240-byte size class (TestConnSize).
type conn struct {
	fd     int
	remote string // "ip:port", filled only when there is an access log
	in     []byte // bytes of requests not yet answered
	out    []byte // answer bytes not yet written
	file   int    // a file being sent after out, or -1
	fileAt int64
	fileTo int64
	// wrote counts the bytes written to the connection (not those of
	// files): a drain's only sign of movement on a unix socket.
	wrote int64
	// since is when the connection became idle (or was accepted); the
	// drain and eviction measure quiet from it.
	since    int64
	deadline int64 // unix nanos; 0 is none
	headAt   int64 // when the head of the request being answered was read
	// acked is the socket's bytes_acked at the last write_timeout check.
	acked uint64
	px    *exchange // the proxied request in progress (exchange.go)
	prog  Progress  // what a drain saw of its movement (progress.go)
	// queued (below): in the reusable queue (reuse.go), between rqPrev
	// and rqNext.
	rqPrev, rqNext *conn
	ip             netip.Addr // the client's, counted for max_connections_per_ip
	// tls: the connection's record layer on a TLS listener (tls.go); out
	// and in are plaintext then.
	tls   *tlsConn
	slot  int32 // index in Loop.list
	state connState
	// closeAfter: close once out and file are written.
	closeAfter bool
	writing    bool // registered for EPOLLOUT instead of EPOLLIN
	fresh      bool // accepted, no request answered yet
	// handoff: once out is written, net/http gets the connection and in.
	handoff bool
	// waiting: requests in in wait for a file or a proxied answer.
	waiting bool
	// muted: epoll reports nothing for it (a proxied answer is coming).
	muted bool
	// pp: the PROXY protocol header is still to come (proxyproto.go);
	// ppRemote: remote is the client's address that header gave (kept
	// as the string only: 32 bytes less on every connection).
	pp, ppRemote bool
	queued       bool
}

func (l *Loop) conn(fd int) *conn {
	if fd < len(l.byFD) {
		return l.byFD[fd]
	}
	return nil
}

// forgetConn removes c from the loop's tables; the fd stays open.
func (l *Loop) forgetConn(c *conn) {
	l.poll.Del(c.fd)
	last := l.list[len(l.list)-1]
	l.list[c.slot] = last
	last.slot = c.slot
	l.list[len(l.list)-1] = nil
	l.list = l.list[:len(l.list)-1]
	l.byFD[c.fd] = nil
	l.unqueueReusable(c)
	if c.file >= 0 {
		rawsys.Close(c.file)
		c.file = -1
	}
	if c.px != nil {
		l.endExchange(c)
	}
	l.open.Add(-1)
}

// close closes c and gives its slot back.
func (l *Loop) close(c *conn) {
	if c.tls != nil {
		l.closeNotify(c)
		l.endTLS(c)
	}
	l.forgetConn(c)
	rawsys.Close(c.fd)
	l.host.Release()
	if c.ip.IsValid() {
		l.host.Leave(c.ip)
	}
	l.recycle(c)
}

// loopFree bounds the closed connections kept for reuse.
const loopFree = 256

// newConn returns a connection record, a reused one if there is one:
// clients that connect for every request would otherwise make garbage at
// their pace, and the heap grows to the collector's first target.
func (l *Loop) newConn() *conn {
	if n := len(l.free); n > 0 {
		c := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return c
	}
	return &conn{file: -1}
}

// recycle keeps a closed connection's record for the next accept.
func (l *Loop) recycle(c *conn) {
	if len(l.free) >= loopFree {
		return
	}
	l.outs.put(c.out)
	*c = conn{file: -1}
	l.free = append(l.free, c)
}

// readable reads what arrived on c and answers every complete request.
func (l *Loop) readable(c *conn) {
	if c.state == connLinger {
		l.discard(c)
		return
	}
	if l.cfg.TLS != nil {
		switch {
		case c.tls == nil:
			l.startHandshake(c)
		case c.tls.hs != nil:
			l.handshakeEvent(c)
		default:
			l.readableTLS(c)
		}
		return
	}
	var data []byte
	for {
		dst := l.rbuf
		if len(c.in) > 0 {
			// A partial head waits: read after it, within MaxHead.
			if cap(c.in)-len(c.in) < 2048 {
				c.in = append(c.in, make([]byte, 4096)...)[:len(c.in)]
			}
			dst = c.in[len(c.in):cap(c.in)]
		}
		n, st := read(c.fd, dst)
		if st == ioAgain {
			return
		}
		if st == ioClosed {
			// The client closed or the connection broke; a partial
			// request is abandoned as net/http abandons it.
			l.close(c)
			return
		}
		if len(c.in) > 0 {
			c.in = c.in[:len(c.in)+n]
			data = c.in
		} else {
			data = dst[:n]
		}
		break
	}
	if c.pp {
		var r ppResult
		if data, r = l.proxyHeader(c, data); r != ppRest {
			return
		}
	}
	if c.state == connIdle {
		// A head is due read_header_timeout after its first byte, or for
		// a new connection after the accept, as in net/http.
		c.state = connReading
		if !c.fresh {
			c.deadline = l.now + l.rht
		}
	}
	l.serve(c, data)
}

// serve answers the complete requests at the start of data, then keeps
// what is left for the next read.
func (l *Loop) serve(c *conn, data []byte) {
	owned := len(c.in) > 0 // data is c.in, not the shared buffer
	out := l.wbuf[:0]
	handoff := false
	for len(data) > 0 && !c.closeAfter {
		n, res := h1.Parse(data, &l.req)
		switch {
		case res == h1.More && len(data) < l.maxHead:
			break
		case res == h1.More, res == h1.OK && n > l.maxHead:
			// A long head is net/http's: it applies max_header_bytes.
			res = h1.NotFast
		}
		if res == h1.More {
			break
		}
		if res == h1.NotFast {
			handoff = true
			break
		}
		c.headAt = l.now
		l.unqueueReusable(c)
		l.syncTable()
		l.resp.Reset()
		var start time.Time
		if l.access != nil {
			start = l.access.Now()
		}
		ok := l.fast.ServeFast(&l.req.FastRequest, &l.resp)
		if !ok {
			handoff = true
			break
		}
		c.fresh = false
		if l.needRemote {
			l.who(c, l.resp.Proxy != nil || l.access != nil)
		}
		if l.resp.Proxy != nil {
			c.closeAfter = l.req.Close || !l.keepAlive || l.draining
			c.out = append(l.outRoom(c, len(out)), out...)
			l.wbuf = out[:0]
			ex := l.newExchange(c, l.resp.Proxy, data[:n], start)
			data = data[n:]
			if c.closeAfter {
				data = nil
			}
			c.waiting = len(data) > 0
			keepRest(c, data, owned)
			l.startProxy(ex)
			if c.px == ex {
				l.flushProxy(c)
			}
			return
		}
		out = l.answer(c, out)
		if l.access != nil {
			l.logAccess(c, start)
		}
		l.served(c)
		data = data[n:]
		if c.file >= 0 || len(out) >= loopMaxOut {
			// The file goes out before any later answer; and answers to a
			// flood of pipelined requests are made as the client takes
			// them, not all at once.
			break
		}
	}
	l.wbuf = out[:0]
	if c.closeAfter {
		data = nil
	}
	c.waiting = len(data) > 0 && !handoff && (c.file >= 0 || len(out) >= loopMaxOut)
	keepRest(c, data, owned)
	if handoff {
		if len(out) == 0 {
			l.handoff(c, c.in)
			return
		}
		// Answers to earlier pipelined requests go first; flush hands
		// the connection over once they are out.
		c.handoff = true
	}
	if len(out) == 0 && c.file < 0 {
		// Only part of a head so far: its deadline runs on.
		return
	}
	l.writeOut(c, out)
}

// who finds the client of the request in l.req, and its request ID when
// id is set: with trusted_proxies, a trusted peer's X-Forwarded-For names
// the client and its X-Request-ID is kept (see app.Trust); otherwise the
// peer is the client, and the ID is made here.
func (l *Loop) who(c *conn, id bool) {
	r := &l.req
	peer := clientIP(c.remote)
	l.client, l.useChain = c.remote, false
	if t := l.cfg.Trust; t != nil {
		client, before := t.Client(peer, r.XFF)
		if client != peer {
			l.client = net.JoinHostPort(client, "0")
		}
		l.useChain = true
		switch {
		case before != "" && client != "":
			l.chain = before + ", " + client
		default:
			l.chain = client
		}
	}
	if id {
		l.reqID = l.reqID[:0]
		if r.RequestID != "" && l.cfg.Trust.Trusts(peer) && app.ValidRequestID(r.RequestID) {
			l.reqID = append(l.reqID, r.RequestID...)
		} else {
			l.reqID = app.AppendRequestID(l.reqID)
		}
	}
}

// keepRest keeps data, the bytes after the requests answered, in c.in;
// owned says data lies in c.in already.
func keepRest(c *conn, data []byte, owned bool) {
	switch {
	case len(data) == 0:
		c.in = nil // idle connections hold no buffer
	case owned:
		c.in = c.in[:copy(c.in, data)]
	default:
		c.in = append(c.in[:0], data...)
	}
}

// inlineFileMax is the largest file read into the answer buffer rather
// than sent by sendfile.
const inlineFileMax = 32 << 10

// answer appends the response in l.resp to out, and notes a file to send.
// The framing follows net/http's (see h1.Framing).
func (l *Loop) answer(c *conn, out []byte) []byte {
	r := &l.req
	c.closeAfter = r.Close || !l.keepAlive || l.draining
	out = h1.AppendHead(out, l.resp.Head, r.Minor)
	out = h1.EndHead(out, l.dateLine(), false, h1.Framing(r.Minor, c.closeAfter, l.draining))
	head := r.Method == "HEAD"
	if fd := l.resp.FileFD; fd >= 0 {
		size := l.resp.FileSize
		switch {
		case head || size == 0:
			rawsys.Close(fd)
		case size <= inlineFileMax:
			// A small file goes out with its head, in one write and one
			// segment, not as a write and a sendfile the client wakes
			// for twice. Short of the length (truncated under us),
			// sendfile takes over where the read stopped, and finds
			// nothing.
			n := int(size)
			out = slices.Grow(out, n)
			k, err := rawsys.Pread(fd, out[len(out):len(out)+n], 0)
			if err != nil {
				k = 0
			}
			out = out[:len(out)+k]
			if k == n {
				rawsys.Close(fd)
				break
			}
			c.file, c.fileAt, c.fileTo = fd, int64(k), size
		default:
			c.file, c.fileAt, c.fileTo = fd, 0, size
		}
	} else if !head {
		out = append(out, l.resp.Body...)
	}
	return out
}

func (l *Loop) logAccess(c *conn, start time.Time) {
	r := &l.req
	var bytes int64
	if r.Method != "HEAD" {
		bytes = l.resp.BodyLen()
	}
	l.access.Log(&app.Entry{
		Remote: l.client, RequestID: h1.Str(l.reqID), Method: r.Method, RequestURI: r.Target, Path: r.Path,
		RawQuery: r.Query, Proto: r.Proto(), Host: r.Host, Referer: r.Referer,
		UserAgent: r.UserAgent, Status: l.resp.Status, Bytes: bytes,
		Start: start, End: l.access.Now(),
	})
}

// flush writes what c has to send; what the socket does not take waits
// for EPOLLOUT. Once all is out, c closes or waits for its next request.
func (l *Loop) flush(c *conn) {
	if c.tls != nil {
		l.flushTLS(c)
		return
	}
	// No MSG_MORE before a file: corking the head until sendfile's pages
	// join it cost half again as much CPU per 100 KiB file.
	n, st := write(c.fd, c.out, 0)
	c.out = c.out[:copy(c.out, c.out[n:])]
	c.wrote += int64(n)
	progressed := n > 0
	switch st {
	case ioAgain:
		l.waitWritable(c, progressed)
		return
	case ioClosed:
		l.close(c)
		return
	}
	for c.file >= 0 && c.fileAt < c.fileTo {
		n, err := rawsys.Sendfile(c.fd, c.file, &c.fileAt, int(min(c.fileTo-c.fileAt, 1<<30)))
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.waitWritable(c, progressed)
			return
		}
		if err != nil || n == 0 {
			// A file truncated under us cannot fill its Content-Length.
			l.close(c)
			return
		}
		progressed = true
	}
	l.flushed(c)
}

// flushed goes on once all of c's answer is written: c closes, waits for
// its next request, or serves the ones that waited.
func (l *Loop) flushed(c *conn) {
	if c.file >= 0 {
		rawsys.Close(c.file)
		c.file = -1
	}
	if c.px != nil {
		l.resumeProxy(c)
		return
	}
	if c.handoff {
		c.handoff = false
		l.handoff(c, c.in)
		return
	}
	l.releaseOut(c)
	if c.writing || c.muted {
		c.writing, c.muted = false, false
		if err := l.poll.Mod(c.fd, poll.In); err != nil {
			l.close(c)
			return
		}
	}
	if c.closeAfter {
		l.linger(c)
		return
	}
	if len(c.in) > 0 {
		// The start of the next request, or pipelined requests that
		// waited behind a file.
		c.state, c.since = connReading, l.now
		c.deadline = l.now + l.rht
		l.queueReusable(c)
		if c.waiting {
			c.waiting = false
			l.serve(c, c.in)
		}
		return
	}
	c.state, c.since = connIdle, l.now
	c.deadline = 0
	if l.idle > 0 {
		c.deadline = l.now + l.idle
	}
	l.queueReusable(c)
}

// waitWritable waits for the socket to take more of c's answer.
// write_timeout is nginx's send_timeout: the longest wait between two
// writes that moved bytes, so a client that reads at any steady rate is
// never cut off. One that stops reading is cut off one to two
// write_timeouts after it took its last byte (see tookMore).
func (l *Loop) waitWritable(c *conn, progressed bool) {
	if c.state != connWriting || progressed {
		c.state = connWriting
		c.deadline = 0
		if l.wto > 0 {
			c.deadline = l.now + l.wto
		}
	}
	if c.writing {
		return
	}
	c.writing = true
	if err := l.poll.Mod(c.fd, poll.Out); err != nil {
		l.close(c)
	}
}

// linger closes c after its last answer without losing that answer: a
// close(2) with unread bytes in the socket sends a reset, which can reach
// the client before the answer does. So the write side is shut down and
// the loop reads until the client closes, or lingerTime passes.
func (l *Loop) linger(c *conn) {
	l.closeNotify(c)
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		l.close(c)
		return
	}
	c.state, c.since = connLinger, l.now
	c.in = nil
	c.deadline = l.now + int64(lingerTime)
	l.discard(c)
}

// discard reads and drops what a lingering connection receives.
func (l *Loop) discard(c *conn) {
	for {
		_, st := read(c.fd, l.rbuf)
		if st == ioAgain {
			return
		}
		if st == ioClosed {
			l.close(c)
			return
		}
	}
}

// sweep closes connections past their deadline and, in a drain, idle
// ones past the grace; at worker_connections it resumes accepting when a
// slot is free, or closes the oldest reusable connections for the
// clients that wait (reuse.go).
func (l *Loop) sweep() {
	grace := int64(l.cfg.Grace)
	for i := 0; i < len(l.list); {
		c := l.list[i]
		if c.deadline != 0 && l.now >= c.deadline {
			if c.state == connLinger && l.now-c.since < int64(lingerMax) && unsent(c.fd) > 0 {
				// The answer is still leaving: a close now could lose it.
				c.deadline = l.now + int64(lingerTime)
				i++
				continue
			}
			if c.state == connWriting && tookMore(c) {
				// The client took bytes from the send buffer, though not
				// enough for the kernel to wake a write.
				c.deadline = l.now + l.wto
				i++
				continue
			}
			// A timeout: net/http closes without an answer too.
			if l.draining && c.state == connIdle {
				l.host.DrainIdleClosed() // keepalive ended it before the drain's grace did
			}
			if l.log.Enabled(context.Background(), slog.LevelDebug) {
				l.log.Debug("event loop closes a connection at its deadline", "state", c.state.String())
			}
			l.close(c)
			continue // c's slot now holds another connection
		}
		if c.state == connIdle && l.draining && l.now-c.since >= grace && l.now-l.drainStart >= grace && quiet(c.fd) {
			l.host.DrainIdleClosed()
			l.close(c)
			continue
		}
		i++
	}
	if l.paused && !l.draining {
		if !l.host.Acquire() {
			// Clients that waited a whole tick found no sibling with room.
			if !l.cfg.Evict || l.rqHead == nil {
				return
			}
			if n := l.waiting(); n == 0 || l.evictForWaiting(n) == 0 || !l.host.Acquire() {
				return
			}
		}
		// A slot is free: accept takes it again for the next client.
		l.host.Release()
		l.paused = false
		if err := l.startAccepting(); err != nil {
			l.log.Warn("resume accepting failed", "err", err)
		}
	}
}

// quiet reports whether nothing is on its way on fd in either direction:
// no request bytes wait unread, and the last answer has left the send
// buffer. Closing a connection with an answer still in the buffer hands
// its delivery to the kernel's orphan handling, which may drop it.
func quiet(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err == nil && n > 0 {
		return false
	}
	return unsent(fd) == 0
}

// tookMore reports whether the client acknowledged bytes since the last
// check: a large send buffer wakes a write only once a third of it is
// free, and a client that drains it at a steady rate below that per
// write_timeout is not stalled.
func tookMore(c *conn) bool {
	info, err := unix.GetsockoptTCPInfo(c.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || info.Bytes_acked == c.acked {
		return false
	}
	c.acked = info.Bytes_acked
	return true
}

// unsent is how many bytes wait in fd's send buffer (0 if unknown).
func unsent(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		return 0
	}
	return n
}

// ioStatus is what a read or a write found.
type ioStatus int

const (
	ioOK     ioStatus = iota // bytes arrived, or all were written
	ioAgain                  // nothing waits, or the socket is full: epoll says when
	ioClosed                 // end of stream, or the connection broke
)

// read reads what fd holds into b, with an interrupted call retried.
func read(fd int, b []byte) (int, ioStatus) {
	for {
		n, err := rawsys.Read(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, ioAgain
		case err != nil || n == 0:
			return 0, ioClosed
		}
		return n, ioOK
	}
}

// write sends b on fd until all of it is taken (ioOK) or the socket is
// full (ioAgain) or broken (ioClosed); n is how much was taken.
func write(fd int, b []byte, flags int) (n int, st ioStatus) {
	for n < len(b) {
		k, err := rawsys.Send(fd, b[n:], flags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return n, ioAgain
		case err != nil:
			return n, ioClosed
		}
		n += k
	}
	return n, ioOK
}

// served tells the host of an answer the loop made itself.
func (l *Loop) served(c *conn) {
	var bytes int64
	if l.req.Method != "HEAD" {
		bytes = l.resp.BodyLen()
	}
	l.host.Served(l.host.Route(l.req.Host, l.req.Path), l.resp.Status, bytes, c.headAt)
}
