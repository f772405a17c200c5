package evloop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"

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
// The coroutine is taken only once the client's first record (the
// ClientHello's, at most 16 KiB) has come whole: until then its bytes
// wait in c.in, and the connection is one with part of a head, in the
// reusable queue. Once it is taken and until the handshake ends, the
// connection keeps its deadline from the accept (read_header_timeout, as
// in net/http) and stays out of the reusable queue (nginx does not evict
// a connection mid-handshake either); a close
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

// startHandshake begins a new connection's TLS handshake once its first
// record came whole: a client that connects and says nothing, or sends
// part of a ClientHello and stalls, costs no coroutine (and no stack);
// its bytes wait in c.in, and the loop times it out, or evicts it, like a
// plain connection with part of a head.
func (l *Loop) startHandshake(c *conn) {
	in, ok := l.firstRecord(c)
	if !ok {
		return
	}
	t := &tlsConn{}
	t.tc = tls.Server(&t.io, l.cfg.TLS)
	t.hs = &handshake{co: l.takeCoro()}
	t.hs.co.t = t
	c.tls, c.state = t, connHandshake
	l.unqueueReusable(c)
	l.feedHandshake(c, in)
}

// Before a handshake starts, the loop gathers the first record as
// crypto/tls would read it: the 5-byte header (type, version, length),
// then the length's bytes. A ClientHello record holds at most 16 KiB; the
// loop gathers up to crypto/tls's own limit for a record (2 KiB more),
// which then refuses it as it always has.
const (
	recordHeaderLen = 5
	maxFirstRecord  = 16<<10 + 2048
)

// firstRecordLen is how many bytes the first record is, header and body,
// or the header alone while that is incomplete; 0 when the header shows
// crypto/tls will refuse the record without reading on (not a handshake
// or an alert record, a version no TLS has, or too long), so that it
// answers it as it always did.
func firstRecordLen(b []byte) int {
	if len(b) < recordHeaderLen {
		return recordHeaderLen
	}
	const typeAlert, typeHandshake = 21, 22
	vers, n := int(b[1])<<8|int(b[2]), int(b[3])<<8|int(b[4])
	if b[0] != typeHandshake && b[0] != typeAlert || vers >= 0x1000 || n > maxFirstRecord {
		return 0
	}
	return recordHeaderLen + n
}

// firstRecord reads what came on a TLS connection that has no handshake
// yet, and reports whether its first record is whole (or will be refused
// whole), with the bytes for the handshake; until then they wait in c.in.
// ok false: not yet, or c is closed.
func (l *Loop) firstRecord(c *conn) (in []byte, ok bool) {
	for {
		dst := l.rbuf
		if len(c.in) > 0 {
			dst = c.in[len(c.in):cap(c.in)]
		}
		n, st := read(c.fd, dst)
		switch st {
		case ioClosed:
			l.close(c)
			return nil, false
		case ioAgain:
			return nil, false
		}
		data := dst[:n]
		if len(c.in) > 0 {
			c.in = c.in[:len(c.in)+n]
			data = c.in
		}
		if c.pp {
			// proxy_protocol: the PROXY header comes before the
			// ClientHello, under the same deadline.
			rest, r := l.proxyHeader(c, data)
			switch r {
			case ppClosed:
				return nil, false
			case ppWait:
				c.state = connReading
				if len(c.in) > 0 && cap(c.in)-len(c.in) < 256 {
					c.in = slices.Grow(c.in, 512)
				}
				continue
			}
			// What follows the header begins the first record; c.in,
			// which held the header, is not kept.
			c.in, data = nil, rest
		}
		need := firstRecordLen(data)
		if need == 0 || len(data) >= need {
			// c.in holds plaintext from here on; what was gathered is
			// the handshake's now.
			c.in = nil
			return data, true
		}
		// Room grows with what came, up to the record: a header that
		// announces 16 KiB and stalls holds 512 bytes, not 16 KiB.
		if room := min(need, max(2*len(data), 512)); len(c.in) == 0 {
			c.in = append(make([]byte, 0, room), data...)
		} else if cap(c.in) == len(c.in) {
			c.in = append(make([]byte, 0, room), c.in...)
		}
		// Part of a record is part of a head: its deadline runs on from
		// the accept (read_header_timeout), and eviction may take it.
		c.state = connReading
	}
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
		l.dropCoro(h.co)
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
	if h.done {
		l.handshook(c)
		return
	}
	n, st := read(c.fd, l.rbuf)
	if st == ioClosed {
		l.close(c)
		return
	}
	if n > 0 {
		l.feedHandshake(c, l.rbuf[:n])
	}
}

// feedHandshake resumes c's handshake with the ciphertext in, and sends
// what it answers.
func (l *Loop) feedHandshake(c *conn, in []byte) {
	t := c.tls
	h := t.hs
	t.io.in = in
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
	t.io.sock, t.io.remote = l.host.AdoptTLS(nc, c.ip), ppAddr(c)
	l.handoffs.push(t.tc)
	l.recycle(c)
}
