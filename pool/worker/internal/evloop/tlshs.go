package evloop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"iter"
	"log/slog"
	"net"
	"os"

	"github.com/hfork/hfork/pool/worker/internal/poll"
	"golang.org/x/sys/unix"
)

// A TLS connection's handshake runs on the loop's own thread, as a
// coroutine (iter.Pull). crypto/tls keeps a handshake's error for good, so
// a handshake cannot stop at a dry socket and go on at the next event the
// way the record layer does (errDry). Instead, once the ciphertext in
// memory is taken, the transport's Read yields to the loop, which resumes
// the handshake when more arrives, one resume per readable event; what
// the handshake writes lands in io.out, which the loop writes to the
// socket before it reads again. Resuming a coroutine is a goroutine
// switch on the same thread: a handshake costs no second fd, no goroutine
// of the scheduler's and no wake of another thread.
//
// Until it ends, the connection keeps its deadline from the accept
// (read_header_timeout, as in net/http) and stays out of the reusable
// queue (nginx does not evict a connection mid-handshake either); a close
// for any reason (the deadline, a drain, Stop) stops the coroutine, whose
// Read then fails and whose handshake returns.

// handshake is a TLS handshake in progress on a coroutine.
type handshake struct {
	co   *hsCoro // its coroutine, until the handshake returns
	err  error   // the handshake's outcome, once done
	done bool
	// held is the ciphertext after the handshake's last message, kept
	// while that last flight waits for the socket.
	held []byte
	// out: the connection waits for EPOLLOUT (a flight the socket did
	// not take), not EPOLLIN.
	out bool
}

// errStopped is what a handshake's Read returns once the loop ends it.
var errStopped = errors.New("evloop: handshake stopped")

// hsCoro is a coroutine that runs handshakes one after another: the stack
// its first handshake grew serves the next ones, where a new goroutine's
// would grow to a handshake's depth again each time (copying it cost 3-4%
// of a worker's CPU under tls_handshake).
type hsCoro struct {
	next func() (struct{}, bool)
	stop func()
	t    *tlsConn // the handshake's connection; nil once it returned
	err  error
}

func (co *hsCoro) run(yield func(struct{}) bool) {
	for {
		t := co.t
		t.io.yield = yield
		co.err = t.tc.Handshake()
		t.io.yield = nil
		co.t = nil
		if !yield(struct{}{}) { // idle until the next handshake
			return
		}
	}
}

// hsPool keeps the idle coroutines while handshakes come.
type hsPool struct {
	idle []*hsCoro
	used int64 // when one was last taken, on the loop's clock
}

// hsKept bounds the idle coroutines kept, each with its stack.
const hsKept = 16

func (l *Loop) takeCoro() *hsCoro {
	p := &l.hsPool
	p.used = l.now
	if n := len(p.idle); n > 0 {
		co := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		return co
	}
	co := &hsCoro{}
	co.next, co.stop = iter.Pull(co.run)
	return co
}

func (l *Loop) putCoro(co *hsCoro) {
	p := &l.hsPool
	if len(p.idle) >= hsKept {
		co.stop()
		return
	}
	p.idle = append(p.idle, co)
}

// trimCoros ends the idle coroutines once no handshake came for
// loopHot, or all of them (now) when the loop ends.
func (l *Loop) trimCoros(now bool) {
	p := &l.hsPool
	if len(p.idle) == 0 || !now && l.now-p.used < int64(loopHot) {
		return
	}
	for _, co := range p.idle {
		co.stop()
	}
	clear(p.idle)
	p.idle = p.idle[:0]
}

// startHandshake begins a new connection's TLS handshake once its first
// bytes came: a client that connects and says nothing costs no
// handshake, and the loop times it out like a silent plain one.
func (l *Loop) startHandshake(c *conn) {
	t := &tlsConn{}
	t.tc = tls.Server(&t.io, l.cfg.TLS)
	t.hs = &handshake{co: l.takeCoro()}
	t.hs.co.t = t
	c.tls, c.state = t, connHandshake
	l.unqueueReusable(c)
	l.handshakeEvent(c)
}

// resume runs t's handshake until it needs more ciphertext or returns.
func (l *Loop) resume(t *tlsConn) {
	h := t.hs
	h.co.next()
	if h.co.t == nil {
		h.done, h.err = true, h.co.err
		l.putCoro(h.co)
		h.co = nil
	}
}

// endHandshake ends t's handshake before it is done: its Read fails, and
// its coroutine is free for another.
func (l *Loop) endHandshake(t *tlsConn) {
	h := t.hs
	t.hs = nil
	if h.co == nil {
		return
	}
	t.io.in, t.io.stopped = nil, true
	h.co.next()
	if h.co.t != nil {
		// crypto/tls read on after a failed read: not a coroutine to keep.
		h.co.stop()
		return
	}
	l.putCoro(h.co)
}

// handshakeEvent is an event on c during its handshake: the flight that
// waited for the socket goes first, then what arrived resumes the
// handshake.
func (l *Loop) handshakeEvent(c *conn) {
	t := c.tls
	h := t.hs
	if len(t.io.out) > 0 && !l.sendFlight(c) {
		return
	}
	if !h.done {
		n, st := read(c.fd, l.rbuf)
		if st == ioClosed {
			l.close(c)
			return
		}
		if n == 0 {
			return
		}
		t.io.in = l.rbuf[:n]
		l.resume(t)
		if h.done && h.err != nil {
			if l.log.Enabled(context.Background(), slog.LevelDebug) {
				l.log.Debug("tls handshake failed", "err", h.err)
			}
			l.sendTLS(c) // the alert, if crypto/tls sealed one
			l.close(c)
			return
		}
		if len(t.io.out) > 0 {
			if h.done && len(t.io.in) > 0 {
				// l.rbuf serves the next connection's read.
				h.held = bytes.Clone(t.io.in)
			}
			t.io.in = nil
			if !l.sendFlight(c) {
				return
			}
		}
	}
	if h.done {
		l.handshook(c)
	}
}

// sendFlight writes what the handshake sealed. It reports whether all of
// it is out; if not, c waits for the socket to take the rest, or closed.
func (l *Loop) sendFlight(c *conn) bool {
	h := c.tls.hs
	_, st := l.writeTLS(c)
	switch st {
	case ioClosed:
		l.close(c)
		return false
	case ioAgain:
		if !h.out {
			// The client cannot answer a flight it has not read: nothing
			// is lost by not reading meanwhile.
			h.out = true
			if l.log.Enabled(context.Background(), slog.LevelDebug) {
				l.log.Debug("tls handshake waits for the socket to take its flight", "unsent", len(c.tls.io.out))
			}
			if err := l.poll.Mod(c.fd, poll.Out); err != nil {
				l.close(c)
			}
		}
		return false
	}
	if h.out {
		h.out = false
		if err := l.poll.Mod(c.fd, poll.In); err != nil {
			l.close(c)
			return false
		}
	}
	return true
}

// handshook takes up c once its handshake succeeded and its last flight
// is out.
func (l *Loop) handshook(c *conn) {
	t := c.tls
	if h := t.hs; h.held != nil {
		t.io.in = h.held
	}
	t.hs = nil
	if t.tc.ConnectionState().NegotiatedProtocol == "h2" {
		l.handoffH2(c)
		return
	}
	c.state, c.since, c.deadline = connIdle, l.now, l.now+l.rht
	l.queueReusable(c)
	// The request may have come with the client's Finished: what the
	// handshake did not take is in t.io.in, and what it read ahead of its
	// last record waits inside the tls.Conn.
	l.openTLS(c, len(t.io.in) > 0)
}

// sockConn is a net.Conn in Go's poller on a dup of fd; fd stays open.
func sockConn(fd int) (net.Conn, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "")
	nc, err := net.FileConn(f) // a dup of its own
	f.Close()
	return nc, err
}

// handoffH2 gives an HTTP/2 connection to net/http right after its
// handshake: the tls.Conn goes on over a socket in Go's poller, after the
// ciphertext the loop read and the handshake did not take.
func (l *Loop) handoffH2(c *conn) {
	t := c.tls
	nc := l.socketForNetHTTP(c)
	if nc == nil {
		l.recycle(c)
		return
	}
	if len(t.io.in) > 0 {
		t.io.in = bytes.Clone(t.io.in) // not l.rbuf's any more
	}
	t.io.sock = l.host.AdoptTLS(nc, c.ip)
	l.handoffs.push(t.tc)
	l.recycle(c)
}
