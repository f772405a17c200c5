package worker

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfork/hfork/pool/internal/proxyproto"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// gatedListener is one of the worker's listening sockets. It takes a slot
// of the worker's connection semaphore before it accepts, so a worker never
// holds more connections than its class allows (one for sync), and the
// connections it cannot take stay in the kernel's queue for its siblings.
type gatedListener struct {
	net.Listener
	w    *worker
	done chan struct{}
	once sync.Once
	// A TLS listener's accept loop and its handshakes' results
	// (tlsframe.go).
	tlsLoop    sync.Once
	handshaken chan acceptResult
}

// Accept balancing: all workers of a listener wait on one socket, and the
// one that wakes first would accept a whole burst of new connections while
// its siblings idle; with keep-alive it then serves them all on one core.
// A worker that holds a few connections waits a moment per connection
// before the next accept, so an idle sibling takes it first; past
// acceptPauseUpTo connections it only yields, so the goroutines serving
// its connections run first and a busy worker accepts later than an idle
// sibling. The pause is bounded because a connection in the queue is one
// whose request already waits: a pause per accept at any count made the
// thousandth client of a burst wait for a thousand pauses (about 1 s).
const (
	acceptPause     = 20 * time.Microsecond
	acceptPauseMax  = time.Millisecond
	acceptPauseUpTo = 32
)

func (l *gatedListener) Accept() (net.Conn, error) {
	if l.w.tls != nil {
		return l.acceptTLS()
	}
	tc, err := l.accept()
	if err != nil {
		return nil, err
	}
	return tc, nil
}

// accept takes the next connection under the worker's limits.
func (l *gatedListener) accept() (*trackedConn, error) {
	// Not when full: then the wait is acquire's, and a pause would cap
	// how fast a flood's connections make room (evict.go).
	if n := l.w.open.Load(); n > 0 && l.w.siblings && !l.w.full() {
		if n <= acceptPauseUpTo {
			select {
			case <-time.After(min(time.Duration(n)*acceptPause, acceptPauseMax)):
			case <-l.done:
				return nil, net.ErrClosed
			}
		} else {
			runtime.Gosched()
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
		}
	}
	sem := l.w.connSem
	for {
		if l.w.limits.oneAtATime && !l.w.waitFree(l.done) {
			return nil, net.ErrClosed
		}
		if sem != nil {
			if err := l.acquire(sem); err != nil {
				return nil, err
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			if sem != nil {
				<-sem
			}
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			return nil, err
		}
		ip := remoteIP(c)
		if !l.w.perIP.admit(ip) {
			// Over max_connections_per_ip: closed before a byte is read.
			c.Close()
			if sem != nil {
				<-sem
			}
			continue
		}
		if l.w.cfg.ProxyProtocol {
			// The header comes before anything else, a TLS handshake too.
			// max_connections_per_ip counted the peer: the header is read
			// on the connection's own goroutine, never in Accept.
			c = proxyproto.NewConn(c, l.w.cfg.ReadHeaderTimeout)
		}
		// A connection accepted while Close races is still ours: the kernel
		// gave it to this process, so it is served (or drained), never
		// dropped.
		tc := l.w.adopt(c, ip)
		if l.w.tls != nil {
			// The framer reads above the handshake (tlsframe.go).
			tc.tls = true
		} else {
			tc.fr = l.w.newFramer(&tc.refused)
		}
		return tc, nil
	}
}

// Close closes only this process's fd: the socket is shared with sibling
// workers and must keep accepting for them, so it is never shut down.
func (l *gatedListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// trackedConn is a connection the worker serves. It knows its HTTP state so
// a drain can tell an idle connection from a busy one, and it carries the
// slot of the request in flight on it.
type trackedConn struct {
	net.Conn
	w         *worker
	closeOnce sync.Once
	req       reqState
	// io counts the bytes read and written on it; prog is what a drain
	// saw of its movement (moving.go), the drain's goroutine's alone.
	io   atomic.Int64
	prog evloop.Progress

	tls bool // served through a *tls.Conn
	// tlsState is an HTTP/1 TLS connection's, for its requests' r.TLS:
	// net/http serves it as plain HTTP through a framedTLS.
	tlsState *tls.ConnectionState
	handled  atomic.Bool // a request reached ServeHTTP since the connection became idle
	ip       netip.Addr  // counted for max_connections_per_ip
	evicted  atomic.Bool // closed to make room: every read ends
	raw      atomic.Bool // hijacked: the app owns its deadlines
	acked    uint64      // bytes_acked at the last write_timeout (sendtimeout.go)
	// fr checks the request heads of a plain-HTTP connection (framing.go);
	// refused is the status of the head it refused.
	fr      *framer
	refused atomic.Int32

	// queued: in the worker's reuse queue (evict.go), since queuedAt,
	// between rqPrev and rqNext; gone: forgotten, never queued again.
	// Under the queue's lock.
	queued, gone   bool
	queuedAt       time.Time
	rqPrev, rqNext *trackedConn

	mu       sync.Mutex
	state    http.ConnState
	h2       bool      // HTTP/2: closes itself with a GOAWAY, never kicked
	alpn     bool      // h2 was decided
	since    time.Time // when it became new or idle
	gotData  bool      // bytes arrived since it became new or idle
	lastData time.Time // when the last bytes arrived
	kicked   bool      // a drain woke its read to close it
	readErr  error     // the last read error, for the refused-request log
	answer   string    // status line net/http wrote itself (plain HTTP only)
	// stream is "METHOD PATH" of the request that upgraded the connection
	// (a WebSocket), and streamAt when; for the master's view of what a
	// drain would hold.
	stream   string
	streamAt time.Time
}

// becameStream records the request that turned c into a stream; only the
// first counts (an upgrade hook, then net/http's hijack).
func (c *trackedConn) becameStream() {
	c.mu.Lock()
	if c.stream == "" && c.req.slot.method != "" {
		c.stream, c.streamAt = c.req.slot.method+" "+notifySafe(c.req.slot.path), time.Now()
	}
	c.mu.Unlock()
}

// aLongTimeAgo is a read deadline in the past: setting it wakes a blocked
// read at once.
var aLongTimeAgo = time.Unix(1, 0)

// Read notes that data arrived, which tells a drain that a request is
// coming in on this connection. When a drain has woken an idle read to
// close the connection, the read ends as a clean EOF so net/http closes it
// quietly, but only after a last look finds nothing waiting in the kernel:
// if a request's bytes won that race, the wake-up is undone and the request
// is served.
func (c *trackedConn) Read(p []byte) (int, error) {
	if c.fr == nil {
		return c.readConn(p)
	}
	if c.raw.Load() && c.fr.state != frRefused {
		c.fr.state = frRaw // hijacked: what follows is the app's
	}
	return c.fr.read(c.readConn, p)
}

// readConn is Read without the framer.
func (c *trackedConn) readConn(p []byte) (int, error) {
	for {
		if c.evicted.Load() {
			// net/http may have set its own deadline after evict's.
			return 0, io.EOF
		}
		n, err := c.Conn.Read(p)
		c.io.Add(int64(n))
		c.mu.Lock()
		if c.evicted.Load() {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if err != nil {
			c.readErr = err
		}
		if n > 0 {
			c.gotData = true
			c.lastData = time.Now()
			if c.kicked {
				c.kicked = false
				c.Conn.SetReadDeadline(time.Time{})
			}
		} else if c.kicked && errors.Is(err, os.ErrDeadlineExceeded) {
			if pending(c.Conn) {
				c.kicked = false
				c.Conn.SetReadDeadline(time.Time{})
				c.mu.Unlock()
				continue
			}
			err = io.EOF
		}
		c.mu.Unlock()
		return n, err
	}
}

// Write notes the status line of a response net/http writes itself, with
// no handler involved: the 400, 431 or 505 of a request it refused.
func (c *trackedConn) Write(p []byte) (int, error) {
	if !c.tls && !c.handled.Load() && bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		line, _, _ := bytes.Cut(p[len("HTTP/1.1 "):], []byte("\r\n"))
		c.mu.Lock()
		if c.answer == "" {
			c.answer = string(line[:min(len(line), 64)])
		}
		c.mu.Unlock()
	}
	n, err := c.timedWrite(p)
	c.io.Add(int64(n))
	return n, err
}

// ReadFrom keeps sendfile(2) for static files: net/http hands a response
// body read from an *os.File to its connection's ReadFrom, and only a
// *net.TCPConn turns that into sendfile. Without this method the body
// would be copied through user space 32 KiB at a time.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return c.readFromChunked(rf, r)
	}
	return io.Copy(writerOnly{c}, r)
}

// writerOnly hides a writer's ReadFrom, so io.Copy does not come back here.
type writerOnly struct{ io.Writer }

// pending reports whether bytes wait unread in the kernel for nc. A read
// whose deadline has passed fails before it looks, so this asks the socket
// directly without consuming anything.
func pending(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}

// Close closes the connection once, gives its slot back to the listener and
// forgets it. net/http, a hijacker and the worker may all call it.
func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.mu.Lock()
		// Closed idle during a drain: woken by it, or by keepalive's own
		// timeout, which a drain leaves running; not the deadline's cut.
		idle := c.kicked || (c.state == http.StateIdle && c.w.draining.Load() && !c.w.drainCut.Load())
		c.mu.Unlock()
		if idle {
			c.w.drainIdleClosed.Add(1)
		}
		if !c.raw.Load() && (c.refused.Load() != 0 || pending(c.Conn)) {
			// Unread bytes (pipelined requests, a refused head's rest)
			// would make close(2) send a reset, which can destroy the
			// answer on its way: shut the write side, read what comes
			// for a moment, then close, off net/http's goroutine.
			go func() {
				lingerClose(c.Conn)
				c.Conn.Close()
			}()
			err = nil
		} else {
			err = c.Conn.Close()
		}
		c.w.forget(c)
	})
	return err
}

// setState records a net/http connection state change.
func (c *trackedConn) setState(s http.ConnState, now time.Time) (prev http.ConnState) {
	c.mu.Lock()
	prev, c.state = c.state, s
	if s == http.StateIdle {
		c.since, c.gotData = now, false
		c.handled.Store(false)
	}
	c.mu.Unlock()
	switch s {
	case http.StateIdle:
		c.w.reuse.push(c, now)
	case http.StateNew:
	default:
		c.w.reuse.remove(c)
	}
	return prev
}

// quietFor is how long c has been idle with nothing arriving, and whether
// it may be closed for that at all. An idle or new connection qualifies
// while no byte has arrived since it became so, since any byte may begin
// a request. A TLS connection that has not started a request qualifies
// too once the handshake's bytes are older than the rest: they are not a
// request. HTTP/2 connections never do; they close themselves with a
// GOAWAY after keepalive.
func (c *trackedConn) quietFor(now time.Time) (time.Duration, bool) {
	if (c.state != http.StateIdle && c.state != http.StateNew) || c.h2 {
		return 0, false
	}
	from := c.since
	if c.gotData {
		if !c.tls || c.state != http.StateNew {
			return 0, false
		}
		from = later(from, c.lastData)
	}
	return now.Sub(from), true
}

// kick wakes the read of a connection that has been idle (or new without a
// byte) for grace, counted from when the drain began at the earliest, so
// that net/http closes it. A connection with bytes arriving is left alone:
// a request is on its way. It reports whether it kicked.
func (c *trackedConn) kick(now, drainStart time.Time, grace time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	quiet, ok := c.quietFor(now)
	if !ok || quiet < grace || now.Sub(drainStart) < grace {
		return false
	}
	// Kicked again on every pass: net/http sets its own idle deadline right
	// after it marks a connection idle, which may land after this one.
	c.kicked = true
	c.Conn.SetReadDeadline(aLongTimeAgo)
	return true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// connKey finds the trackedConn of a request from its context.
type connKey struct{}

// adopt starts tracking a freshly accepted connection.
// ip was admitted against max_connections_per_ip already (or is zero).
func (w *worker) adopt(nc net.Conn, ip netip.Addr) *trackedConn {
	c := &trackedConn{Conn: nc, w: w, state: http.StateNew, since: time.Now(), ip: ip}
	w.connsMu.Lock()
	closed := w.connsClosed
	if !closed {
		w.conns[c] = struct{}{}
		w.open.Add(1)
	}
	w.connsMu.Unlock()
	if !closed {
		w.reuse.push(c, c.since)
	}
	if closed {
		// A fast stop already closed everything; this one follows.
		c.closeOnce.Do(func() {
			nc.Close()
			w.release()
			w.perIP.leave(ip)
		})
	}
	return c
}

// forget stops tracking c and frees its slot.
func (w *worker) forget(c *trackedConn) {
	w.connsMu.Lock()
	_, ok := w.conns[c]
	delete(w.conns, c)
	w.connsMu.Unlock()
	if !ok {
		return
	}
	w.reuse.forget(c)
	w.open.Add(-1)
	w.release()
	w.perIP.leave(c.ip)
	select {
	case w.connGone <- struct{}{}:
	default:
	}
}

// full reports whether every connection slot is taken.
func (w *worker) full() bool {
	return w.connSem != nil && len(w.connSem) == cap(w.connSem)
}

// release gives a connection slot back to the listeners.
func (w *worker) release() {
	if w.connSem != nil {
		<-w.connSem
	}
}

// tracked finds the worker's connection under a TLS one.
func tracked(nc net.Conn) (*trackedConn, bool) {
	if f, ok := nc.(*framedTLS); ok {
		return f.tc, true
	}
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
		if u, ok := nc.(interface{ Underlying() net.Conn }); ok {
			nc = u.Underlying() // the event loop's handshake ran on it
		}
	}
	c, ok := nc.(*trackedConn)
	return c, ok
}

// connState is the http.Server's ConnState hook.
func (w *worker) connState(nc net.Conn, s http.ConnState) {
	c, ok := tracked(nc)
	if !ok {
		return
	}
	var now time.Time
	if s == http.StateIdle {
		now = time.Now()
	}
	if s == http.StateActive && c.tls {
		// The first Active comes after the handshake: from the HTTP/2
		// server once the preface arrived, or once HTTP/1 request bytes did.
		c.mu.Lock()
		decide := !c.alpn
		c.alpn = true
		c.mu.Unlock()
		if decide {
			h2 := nc.(*tls.Conn).ConnectionState().NegotiatedProtocol == "h2"
			c.mu.Lock()
			c.h2 = h2
			c.mu.Unlock()
		}
	}
	prev := c.setState(s, now)
	if s == http.StateClosed && prev == http.StateActive && !c.handled.Load() {
		w.logRefused(c)
	}
	if s == http.StateHijacked {
		c.raw.Store(true)
		// The app took the connection over: whatever runs on it now is a
		// stream, not a stuck request.
		c.becameStream()
		w.finish(&c.req, true)
	}
}

// connContext is the http.Server's ConnContext hook: it lets a request find
// its connection, and lets an app that upgrades the connection say so.
func (w *worker) connContext(ctx context.Context, nc net.Conn) context.Context {
	c, ok := tracked(nc)
	if !ok {
		return ctx
	}
	ctx = context.WithValue(ctx, connKey{}, c)
	return app.WithUpgradeHook(ctx, func() {
		c.becameStream()
		w.finish(&c.req, true)
	})
}

// snapshotConns copies the tracked connections so they can be closed
// without holding the lock their Close takes.
func (w *worker) snapshotConns() []*trackedConn {
	w.connsMu.Lock()
	defer w.connsMu.Unlock()
	cs := make([]*trackedConn, 0, len(w.conns))
	for c := range w.conns {
		cs = append(cs, c)
	}
	return cs
}

// closeConns closes every connection now, hijacked ones included, and makes
// any connection accepted later close at once. It reports how many it
// closed and how many of those had been hijacked.
func (w *worker) closeConns() (closed, hijacked int) {
	w.connsMu.Lock()
	w.connsClosed = true
	w.connsMu.Unlock()
	for _, c := range w.snapshotConns() {
		c.mu.Lock()
		if c.state == http.StateHijacked {
			hijacked++
		}
		c.mu.Unlock()
		c.Close()
		closed++
	}
	return closed, hijacked
}

// logRefused says, at debug, why a connection closed on a request that
// never reached the routes: net/http refused it (400 for a malformed
// request, 431 for headers over max_header_bytes, 505...), the client
// stopped sending before read_header_timeout, or it went away.
func (w *worker) logRefused(c *trackedConn) {
	if !w.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	c.mu.Lock()
	answer, err := c.answer, c.readErr
	c.mu.Unlock()
	reason := "connection closed mid-request"
	switch {
	case answer != "":
		reason = "answered " + answer
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = "read timeout"
	case errors.Is(err, io.EOF):
		reason = "client closed mid-request"
	}
	w.log.Debug("request refused before the routes", "remote", c.RemoteAddr().String(), "reason", reason)
}
