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
	"github.com/hfork/hfork/pool/worker/internal/rawsys"
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
	next func() (struct{}, bool) // resumes it; false once it returned
	stop func()                  // ends it: its Read fails
	err  error                   // the handshake's outcome, once done
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

// startHandshake begins a new connection's TLS handshake once its first
// bytes came: a client that connects and says nothing costs no
// handshake, and the loop times it out like a silent plain one.
func (l *Loop) startHandshake(c *conn) {
	t := &tlsConn{}
	t.tc = tls.Server(&t.io, l.cfg.TLS)
	h := &handshake{}
	h.next, h.stop = iter.Pull(func(yield func(struct{}) bool) {
		t.io.yield = yield
		h.err = t.tc.Handshake()
		t.io.yield = nil
	})
	t.hs = h
	c.tls, c.state = t, connHandshake
	l.unqueueReusable(c)
	l.handshakeEvent(c)
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
		if _, more := h.next(); !more {
			h.done = true
		}
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
	l.forgetConn(c)
	nc, err := sockConn(c.fd)
	rawsys.Close(c.fd)
	if err != nil {
		l.host.Release()
		if c.ip.IsValid() {
			l.host.Leave(c.ip)
		}
		l.log.Warn("handing a connection to net/http failed", "err", err)
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
