package worker

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/h2"
)

// hfork's own HTTP/2 server (package internal/h2, driven here) serves the
// "h2" connections of an async TLS listener with event_loop on and a
// route that has a fast path: ALPN stays net/http's, which hands each h2
// connection to http.Server.TLSNextProto after the handshake. Answers the
// fast path gives (respond, static without Range or conditions, redirect)
// are written inline by the connection's reader, without a goroutine per
// stream; the rest runs the worker's http.Handler in a goroutine
// (h2handler.go). Every other TLS listener keeps net/http's HTTP/2.
//
// Go's server flushed a TLS record per frame batch of at most 4 KiB and
// handed every frame between three goroutines; this driver reads with one
// goroutine, answers in it, and writes what a read produced in one
// tls.Conn.Write.

// h2Server is what the worker's HTTP/2 connections share.
type h2Server struct {
	w     *worker
	trust *app.Trust
	cfg   h2.Config

	mu    sync.Mutex
	conns map[*h2Conn]struct{}
	gone  bool // drain: new connections send GOAWAY at once

	// heads is the fast answers' heads as HTTP/2 fields, by their HTTP/1
	// bytes, shared by the connections (h2fast.go).
	headsMu sync.RWMutex
	heads   map[string]fastHead

	started func(*h2Conn) // options.h2Started
	// settingsTimeout is how long a connection waits for the ACK of its
	// SETTINGS (h2SettingsAckTimeout, or options.h2SettingsTimeout).
	settingsTimeout time.Duration
}

// h2SettingsAckTimeout is how long a client may leave the server's
// SETTINGS unacknowledged before GOAWAY SETTINGS_TIMEOUT (RFC 9113
// section 6.5.3). A real client ACKs in its first flight; ten seconds is
// room for a slow link, and a client that never ACKs (whose streams
// would otherwise run on until keepalive or forever while they stay
// busy) holds the connection no longer.
const h2SettingsAckTimeout = 10 * time.Second

// newH2Server returns the worker's HTTP/2 server, or nil when net/http's
// serves (see the package comment above).
func newH2Server(w *worker, opts options) *h2Server {
	l := opts.Listener
	if !w.h2() || l.Class != hclconfig.ClassAsync || !l.EventLoop || opts.Fast == nil || !opts.Fast.FastRoutes() {
		return nil
	}
	s := &h2Server{w: w, trust: app.NewTrust(l.TrustedProxies), conns: make(map[*h2Conn]struct{}),
		heads: make(map[string]fastHead), started: opts.h2Started,
		settingsTimeout: cmp.Or(opts.h2SettingsTimeout, h2SettingsAckTimeout)}
	if n := l.MaxHeaderBytes; n > 0 {
		s.cfg.MaxHeaderListSize = uint32(n)
	}
	return s
}

// h2Server names the worker's HTTP/2 server for its serving log line.
func (w *worker) h2Server() string {
	switch {
	case w.h2s != nil:
		return "hfork"
	case w.h2():
		return "net/http"
	}
	return "off"
}

// register adds c to the drain's set; false when the drain already ran.
func (s *h2Server) register(c *h2Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = struct{}{}
	return !s.gone
}

func (s *h2Server) unregister(c *h2Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// drain sends GOAWAY on every connection: the streams open finish, and
// each connection closes once it has none.
func (s *h2Server) drain() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.gone = true
	cs := make([]*h2Conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.goAway()
	}
}

// serveH2 is http.Server.TLSNextProto["h2"].
func (s *h2Server) serveH2(srv *http.Server, tc *tls.Conn, h http.Handler) {
	base := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		base = bc.BaseContext()
	}
	c := &h2Conn{srv: s, tc: tc, h: h, remote: tc.RemoteAddr().String()}
	c.cond.L = &c.mu
	c.ctx, c.cancel = context.WithCancel(base)
	c.state = tc.ConnectionState()
	c.m = h2.NewConn(s.cfg)
	if !s.register(c) {
		c.m.GoAway(h2.ErrNo)
	}
	defer s.unregister(c)
	if s.started != nil {
		s.started(c)
	}
	// net/http skips the Active hook for connections it hands over; the
	// worker's tracking learns from it that this one is HTTP/2.
	s.w.connState(tc, http.StateActive)
	c.serve()
}

// h2Conn is one HTTP/2 connection: its state machine, the reader that
// feeds it, and whoever is writing its output right now.
type h2Conn struct {
	srv    *h2Server
	tc     *tls.Conn
	h      http.Handler
	ctx    context.Context
	cancel context.CancelFunc
	state  tls.ConnectionState
	remote string

	mu      sync.Mutex
	cond    sync.Cond // output written, a window opened, body data, a stream or the conn ended
	m       *h2.Conn
	writing bool
	werr    error
	closed  bool
	waiting []*h2Stream // fast answers waiting for a window
	handled bool
	idle    bool // what the worker's tracking was last told
	// lingerTo is when a connection done after its GOAWAY closes, unless
	// the client closes first.
	lingerTo time.Time
	// settingsDue is when the ACK of the server's SETTINGS is due.
	settingsDue time.Time

	fast fastState // the reader's, for the fast path

	// small is what the reader reads into while the client's records are
	// small (requests' heads, WINDOW_UPDATE, PING): a connection waiting
	// for its next request holds it and no record-sized buffer. big is
	// one from readPool while they are not.
	small [readSmall]byte
	big   *[]byte
}

// goAwayLinger is how long a connection reads on after a graceful
// GOAWAY with no stream left, as net/http's HTTP/2 server does.
const goAwayLinger = time.Second

// maxPending is how much output may wait while a write is under way
// before producers wait for it, and how much the fast answers waiting
// for a window put in one write: an output buffer's size, so buffers
// rarely grow past what the pool hands out.
const maxPending = h2.OutputSize

// flushAt is how much output the reader gathers from one read before it
// writes it, answering the rest after: less than it would add past a
// pooled buffer's largest (one answer adds at most fileChunk and a
// head), and more than a usual read's answers (ten 4 KiB files), which
// go out in one write of full records.
const flushAt = 48 << 10

// readSmall is the reader's own buffer (h2Conn.small); a read that fills
// it takes a record-sized buffer from readPool for the reads that follow,
// and gives it back at the first read that small would have held.
const readSmall = 1 << 10

// readPool holds record-sized read buffers: tls.Conn.Read returns at
// most one record, 16 KiB of plaintext.
var readPool = sync.Pool{New: func() any {
	b := make([]byte, 16<<10)
	return &b
}}

// serve reads and feeds until the connection is over.
func (c *h2Conn) serve() {
	defer c.cancel()
	c.mu.Lock()
	c.settingsDue = time.Now().Add(c.srv.settingsTimeout)
	c.flushLocked()
	c.mu.Unlock()
	for {
		// Only the reader sets c.big, under the lock: it reads it without.
		buf := c.small[:]
		if c.big != nil {
			buf = *c.big
		}
		c.setReadDeadline()
		n, rerr := c.tc.Read(buf)
		c.mu.Lock()
		if n > 0 {
			evs, err := c.m.Feed(buf[:n])
			c.handle(evs)
			if err != nil {
				c.srv.w.log.Debug("http2 connection error", "remote", c.remote, "err", err.Error())
			}
		}
		// After the events are handled: their data points into buf.
		switch {
		case c.big == nil && n == len(buf):
			// The record holds more (it waits in the tls.Conn), and the
			// client sends large ones: a body, most likely.
			c.big = readPool.Get().(*[]byte)
		case c.big != nil && n < readSmall:
			readPool.Put(c.big)
			c.big = nil
		}
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() && c.m.Err() == nil && c.werr == nil && !c.closed {
			switch {
			case c.m.Done():
				// A wake-up for the end, or the linger running out.
				if c.lingerTo.IsZero() || time.Now().Before(c.lingerTo) {
					rerr = nil
				}
			case c.m.AwaitingSettingsAck() && !time.Now().Before(c.settingsDue):
				c.srv.w.log.Debug("http2 SETTINGS not acknowledged in time", "remote", c.remote, "timeout", c.srv.settingsTimeout.String())
				c.m.GoAway(h2.ErrSettingsTimeout)
			case c.m.Active() == 0 && !c.m.ReadingHead():
				// Idle past keepalive: GOAWAY, then the linger.
				c.m.GoAway(h2.ErrNo)
				rerr = nil
			}
		}
		c.noteState()
		c.flushLocked()
		for c.writing && c.m.Pending() > maxPending && c.werr == nil {
			c.cond.Wait()
		}
		if !c.writing && c.m.Active() == 0 {
			// Between requests a connection holds no buffer but small.
			c.m.Trim()
		}
		// A graceful end reads on until the linger ends (setReadDeadline).
		done := rerr != nil || c.m.Err() != nil || c.werr != nil
		if done {
			c.finalFlushLocked()
			c.closeLocked()
			if c.big != nil {
				readPool.Put(c.big)
				c.big = nil
			}
		}
		c.mu.Unlock()
		if done {
			return
		}
	}
}

// setReadDeadline gives a head split over CONTINUATION frames
// read_header_timeout, an idle connection keepalive, a stream reading a
// body read_timeout, and one that waits on its handlers no limit; and
// while the client owes the ACK of the server's SETTINGS, its due time
// if that is sooner.
func (c *h2Conn) setReadDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.m.Err() != nil {
		// Nothing more to read: wake at once.
		c.tc.SetReadDeadline(aLongTimeAgo)
		return
	}
	if c.m.Done() {
		// GOAWAY is out and no stream is left. A request the client sent
		// before it read the GOAWAY is on its way: it is read and dropped
		// (the client retries it elsewhere) for goAwayLinger, because a
		// close with unread bytes resets the connection, and the client
		// would lose the GOAWAY with it.
		if c.lingerTo.IsZero() {
			c.lingerTo = time.Now().Add(goAwayLinger)
		}
		c.tc.SetReadDeadline(c.lingerTo)
		return
	}
	active, reading := c.m.Active(), c.fast.bodies
	var d time.Duration
	switch w := c.srv.w; {
	case c.m.ReadingHead():
		d = cmp.Or(w.cfg.ReadHeaderTimeout, fallbackReadHeaderTimeout)
	case active == 0:
		d = w.limits.idle
	case reading > 0:
		d = w.cfg.ReadTimeout
	}
	var at time.Time
	if d > 0 {
		at = time.Now().Add(d)
	}
	if c.m.AwaitingSettingsAck() && (at.IsZero() || c.settingsDue.Before(at)) {
		at = c.settingsDue
	}
	c.tc.SetReadDeadline(at)
}

// flushLocked writes the output unless someone else is writing it; it
// drops the lock while the write is under way. Between writes it refills
// the output from the fast answers waiting for room.
func (c *h2Conn) flushLocked() {
	for !c.writing && c.werr == nil {
		if len(c.waiting) > 0 && c.m.Pending() < maxPending {
			c.pump()
		}
		if c.m.Pending() == 0 {
			return
		}
		c.writing = true
		out := c.m.TakeOutput()
		c.mu.Unlock()
		_, err := c.tc.Write(out)
		h2.PutOutput(out)
		c.mu.Lock()
		c.writing = false
		if err != nil {
			c.werr = err
			c.closeLocked()
		}
		c.cond.Broadcast()
	}
}

// finalFlushLocked writes what is left once the reader is done: after
// the write under way, if any, so nothing is lost to the close.
func (c *h2Conn) finalFlushLocked() {
	for c.writing {
		c.cond.Wait()
	}
	c.flushLocked()
}

// closeLocked ends what waits on the connection: handlers see their
// context done and their writes fail.
func (c *h2Conn) closeLocked() {
	if c.closed {
		return
	}
	c.closed = true
	c.cancel()
	for _, st := range c.waiting {
		st.closeFile()
	}
	c.waiting = nil
	c.cond.Broadcast()
	// Wake the reader, which may be the one calling.
	c.tc.SetReadDeadline(aLongTimeAgo)
}

// goAway is the drain's: GOAWAY, and close once no stream is left.
func (c *h2Conn) goAway() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.GoAway(h2.ErrNo)
	c.flushLocked()
	if c.m.Done() {
		c.tc.SetReadDeadline(aLongTimeAgo) // the reader lingers, then closes
	}
}

// noteState tells the worker's tracking (heartbeat counts, the drain)
// when the connection turns idle or active, as net/http's HTTP/2 server
// does.
func (c *h2Conn) noteState() {
	if idle := c.m.Active() == 0; idle != c.idle {
		c.idle = idle
		s := http.StateActive
		if idle {
			s = http.StateIdle
		}
		c.srv.w.connState(c.tc, s)
	}
}

// release is the end of a stream's work, from the reader or a handler.
func (c *h2Conn) release(st *h2Stream) {
	c.m.Release(st.s)
	c.noteState()
	if c.m.Done() && !c.closed {
		// Wake the reader: it writes what is left and lingers.
		c.tc.SetReadDeadline(aLongTimeAgo)
	}
}

// unwait drops st from the fast answers waiting for a window.
func (c *h2Conn) unwait(st *h2Stream) {
	for i, x := range c.waiting {
		if x == st {
			c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
			return
		}
	}
}

// handle acts on what a Feed found.
func (c *h2Conn) handle(evs []h2.Event) {
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case h2.EvRequest:
			if !c.handled {
				c.handled = true
				if tc, ok := tracked(c.tc); ok {
					tc.handled.Store(true) // not a connection refused unanswered
				}
			}
			c.request(ev)
			if c.m.Pending() >= flushAt {
				// Out before the next answers fill the buffer further.
				c.flushLocked()
			}
		case h2.EvData:
			if st, ok := ev.Stream.User.(*h2Stream); ok {
				st.data(ev.Data, ev.End)
			} else {
				c.m.Consume(ev.Stream, len(ev.Data))
			}
		case h2.EvReset:
			if st, ok := ev.Stream.User.(*h2Stream); ok {
				st.reset()
				if st.hw == nil {
					// A fast answer: nothing else will release it.
					c.unwait(st)
					c.release(st)
				}
			}
		case h2.EvWindow:
			c.resume(ev.Stream)
		}
	}
}
