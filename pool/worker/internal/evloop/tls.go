package evloop

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/poll"
	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// A TLS connection's handshake runs on a goroutine of its own, over a dup
// of the socket in Go's poller: crypto/tls keeps a handshake's error for
// good, so a handshake cannot stop when the socket runs dry and go on at
// the next event. Once it is done, an "h2" connection goes to net/http's
// HTTP/2 server; any other stays with the loop, whose record layer is
// crypto/tls's own driven over memory (tlsIO): the loop reads ciphertext
// from the socket into it and plaintext out of the tls.Conn, and an answer
// is one tls.Conn.Write of head and body, sealed into full records in
// memory and written to the socket like a plain answer.

// tlsFileChunk is how much of a file one seal takes: four full records.
const tlsFileChunk = 64 << 10

// tlsConn is a TLS client connection's record layer.
type tlsConn struct {
	tc *tls.Conn
	io tlsIO
}

// tlsIO is the transport under a tls.Conn. With sock set (the handshake,
// and net/http after a handoff) it is that socket; without, the loop's
// memory: Read takes the ciphertext in, and finds it dry with a temporary
// error, which crypto/tls passes up without poisoning the connection;
// Write appends to out and never fails (a failed write would be sticky).
type tlsIO struct {
	sock net.Conn
	in   []byte // ciphertext read and not yet taken
	out  []byte // sealed records not yet written
}

// errDry is what a tls.Conn reads once the ciphertext in memory is taken.
var errDry = dryError{}

type dryError struct{}

func (dryError) Error() string   { return "evloop: no more ciphertext yet" }
func (dryError) Timeout() bool   { return true }
func (dryError) Temporary() bool { return true }

func (t *tlsIO) Read(b []byte) (int, error) {
	if t.sock != nil {
		return t.sock.Read(b)
	}
	if len(t.in) == 0 {
		return 0, errDry
	}
	n := copy(b, t.in)
	t.in = t.in[n:]
	return n, nil
}

func (t *tlsIO) Write(b []byte) (int, error) {
	if t.sock != nil {
		return t.sock.Write(b)
	}
	t.out = append(t.out, b...)
	return len(b), nil
}

func (t *tlsIO) Close() error {
	if t.sock != nil {
		return t.sock.Close()
	}
	return nil
}

// Underlying is the socket under a handed-over connection: the worker
// finds its own wrapper there.
func (t *tlsIO) Underlying() net.Conn { return t.sock }

func (t *tlsIO) LocalAddr() net.Addr {
	if t.sock != nil {
		return t.sock.LocalAddr()
	}
	return nil
}

func (t *tlsIO) RemoteAddr() net.Addr {
	if t.sock != nil {
		return t.sock.RemoteAddr()
	}
	return nil
}

func (t *tlsIO) SetDeadline(d time.Time) error {
	if t.sock != nil {
		return t.sock.SetDeadline(d)
	}
	return nil
}

func (t *tlsIO) SetReadDeadline(d time.Time) error {
	if t.sock != nil {
		return t.sock.SetReadDeadline(d)
	}
	return nil
}

func (t *tlsIO) SetWriteDeadline(d time.Time) error {
	if t.sock != nil {
		return t.sock.SetWriteDeadline(d)
	}
	return nil
}

// hsResult is a finished handshake, for the loop to take up.
type hsResult struct {
	c   *conn
	t   *tlsConn
	err error
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

// startHandshake begins a new connection's TLS handshake on a goroutine
// once its first bytes came (a client that connects and says nothing
// costs no goroutine; the loop times it out like a silent plain one), due
// read_header_timeout after the accept as in net/http. The socket is in
// the epoll set one-shot, so the loop hears nothing more of it until the
// handshake ends; nor does it time out or evict the connection meanwhile.
func (l *Loop) startHandshake(c *conn) {
	nc, err := sockConn(c.fd)
	if err != nil {
		// Out of fds, most likely: accept warns of that once a second.
		if l.log.Enabled(context.Background(), slog.LevelDebug) {
			l.log.Debug("tls handshake cannot start", "err", err)
		}
		l.close(c)
		return
	}
	t := &tlsConn{}
	t.io.sock = nc
	t.tc = tls.Server(&t.io, l.cfg.TLS)
	c.tls, c.state = t, connHandshake
	due := time.Unix(0, c.deadline)
	c.deadline = 0
	l.unqueueReusable(c)
	go func() {
		nc.SetDeadline(due)
		err := t.tc.Handshake()
		nc.SetDeadline(time.Time{})
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.ended {
			nc.Close()
			return
		}
		l.handshakes = append(l.handshakes, hsResult{c: c, t: t, err: err})
		l.poll.Wake()
	}()
}

// handshaken takes up the handshakes that ended.
func (l *Loop) handshaken(done []hsResult) {
	for _, r := range done {
		c, t := r.c, r.t
		if c.tls != t || c.state != connHandshake {
			// Closed meanwhile; the record may serve another connection.
			t.io.sock.Close()
			continue
		}
		if r.err != nil {
			if l.log.Enabled(context.Background(), slog.LevelDebug) {
				l.log.Debug("tls handshake failed", "err", r.err)
			}
			t.io.sock.Close()
			l.close(c)
			continue
		}
		if t.tc.ConnectionState().NegotiatedProtocol == "h2" {
			l.handoffH2(c)
			continue
		}
		t.io.sock.Close()
		t.io.sock = nil
		c.state, c.since, c.deadline = connIdle, l.now, l.now+l.rht
		if err := l.poll.Mod(c.fd, poll.In); err != nil {
			l.close(c)
			continue
		}
		l.queueReusable(c)
		// The request may have come with the client's Finished, and the
		// handshake read it: epoll would not tell of it again.
		l.readableTLS(c)
	}
}

// handoffH2 gives an HTTP/2 connection to net/http right after its
// handshake, on the socket the handshake ran on.
func (l *Loop) handoffH2(c *conn) {
	t := c.tls
	l.forgetConn(c)
	rawsys.Close(c.fd)
	t.io.sock = l.host.AdoptTLS(t.io.sock, c.ip)
	l.handoffs.push(t.tc)
	l.recycle(c)
}

// handoffTLS gives c to net/http with data, the plaintext read and not
// answered: net/http reads and writes through the same tls.Conn, now over
// the socket.
func (l *Loop) handoffTLS(c *conn, data []byte) {
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
		return
	}
	t.io.sock = nc
	pc := &prefixConn{Conn: t.tc, prefix: append([]byte(nil), data...), raw: nc}
	l.handoffs.push(l.host.Adopt(pc, c.ip))
}

// readableTLS is readable for a TLS connection: it reads the ciphertext
// that arrived, opens every whole record, and answers what it holds.
func (l *Loop) readableTLS(c *conn) {
	t := c.tls
	n, st := read(c.fd, l.rbuf)
	if st == ioClosed {
		l.close(c)
		return
	}
	t.io.in = l.rbuf[:n]
	p, err := l.unseal(c, l.tbuf[:0])
	l.tbuf = p[:0]
	if err != nil {
		// End of stream, a close_notify, or records that do not open
		// (crypto/tls sealed an alert for them): nothing more is served.
		l.sendTLS(c)
		l.close(c)
		return
	}
	if len(p) == 0 && n == 0 {
		return
	}
	if c.state == connIdle {
		c.state = connReading
		if !c.fresh {
			c.deadline = l.now + l.rht
		}
	}
	if len(p) == 0 {
		return // part of a record
	}
	data := p
	if len(c.in) > 0 {
		c.in = append(c.in, p...)
		data = c.in
	}
	l.serve(c, data)
}

// unseal appends to p the plaintext of every whole record in c's
// ciphertext; what is left of a record waits inside the tls.Conn.
func (l *Loop) unseal(c *conn, p []byte) ([]byte, error) {
	t := c.tls
	for {
		if cap(p)-len(p) < 4096 {
			p = append(p, make([]byte, 16<<10)...)[:len(p)]
		}
		k, err := t.tc.Read(p[len(p):cap(p)])
		p = p[:len(p)+k]
		if err != nil {
			t.io.in = nil
			if errors.Is(err, errDry) {
				return p, nil
			}
			return p, err
		}
	}
}

// readDuringProxyTLS is readDuringProxy for a TLS connection.
func (l *Loop) readDuringProxyTLS(c *conn) {
	n, st := read(c.fd, l.rbuf)
	if st == ioAgain {
		return
	}
	if st == ioClosed {
		l.close(c)
		return
	}
	c.tls.io.in = l.rbuf[:n]
	p, err := l.unseal(c, c.in)
	if err != nil {
		l.close(c)
		return
	}
	c.in = p
	c.waiting = len(c.in) > 0
	if len(c.in) >= l.maxHead {
		c.muted = true
		l.setEvents(c.fd, 0)
	}
}

// seal turns c's plaintext answer bytes into records, and with a file to
// send, the file's next chunk with them. It reports false when the
// connection cannot go on.
func (l *Loop) seal(c *conn) bool {
	t := c.tls
	p := c.out
	if c.file >= 0 && c.fileAt < c.fileTo && len(t.io.out) == 0 {
		// Static files cannot use sendfile over TLS: a chunk at a time
		// is read and sealed, the next once the socket took this one.
		if cap(l.fbuf) < tlsFileChunk {
			l.fbuf = make([]byte, 0, tlsFileChunk+4096)
		}
		p = append(l.fbuf[:0], c.out...)
		want := int(min(c.fileTo-c.fileAt, int64(tlsFileChunk)))
		k, err := rawsys.Pread(c.file, p[len(p):len(p)+want], c.fileAt)
		if err != nil || k == 0 {
			// A file truncated under us cannot fill its Content-Length.
			return false
		}
		c.fileAt += int64(k)
		p = p[:len(p)+k]
		l.fbuf = p[:0]
	}
	c.out = c.out[:0]
	if len(p) == 0 {
		return true
	}
	if t.io.out == nil {
		// Room for the records' headers and tags too (29 bytes at most
		// a record; a new connection's records start at about 1 KiB).
		t.io.out = l.outs.get(len(p) + (len(p)>>10+1)*29)
	}
	_, err := t.tc.Write(p)
	return err == nil
}

// writeTLS writes c's sealed records until they are out (ioOK) or the
// socket is full (ioAgain) or broken (ioClosed).
func (l *Loop) writeTLS(c *conn) (progressed bool, st ioStatus) {
	t := c.tls
	n, st := write(c.fd, t.io.out, unix.MSG_NOSIGNAL)
	t.io.out = t.io.out[:copy(t.io.out, t.io.out[n:])]
	if len(t.io.out) == 0 {
		// Between answers a connection holds no buffer of sealed records.
		l.outs.put(t.io.out)
		t.io.out = nil
	}
	return n > 0, st
}

// sendTLS writes what c has sealed, as far as the socket takes it.
func (l *Loop) sendTLS(c *conn) {
	if len(c.tls.io.out) > 0 {
		l.writeTLS(c)
	}
}

// flushTLS is flush for a TLS connection.
func (l *Loop) flushTLS(c *conn) {
	progressed := false
	for {
		if !l.seal(c) {
			l.close(c)
			return
		}
		if len(c.tls.io.out) == 0 {
			break
		}
		moved, st := l.writeTLS(c)
		progressed = progressed || moved
		switch st {
		case ioAgain:
			l.waitWritable(c, progressed)
			return
		case ioClosed:
			l.close(c)
			return
		}
		if c.file < 0 || c.fileAt >= c.fileTo {
			break
		}
	}
	l.flushed(c)
}

// flushProxyTLS is flushProxy for a TLS connection.
func (l *Loop) flushProxyTLS(c *conn) {
	if !l.seal(c) {
		l.close(c)
		return
	}
	moved, st := l.writeTLS(c)
	switch st {
	case ioAgain:
		l.waitWritable(c, moved)
	case ioClosed:
		l.close(c)
	}
}

// unsentTLS reports whether sealed records still wait for the socket.
func (c *conn) unsentTLS() bool {
	return c.tls != nil && len(c.tls.io.out) > 0
}

// closeNotify sends a close_notify alert before the loop closes c or
// shuts its write side, as far as the socket takes it now.
func (l *Loop) closeNotify(c *conn) {
	t := c.tls
	if t == nil || t.io.sock != nil || c.state == connHandshake {
		return
	}
	if t.tc.CloseWrite() == nil {
		l.sendTLS(c)
	}
}

// endTLS lets go of c's record layer when the loop closes it; a handshake
// still running is cut short, and its goroutine closes its socket.
func (c *conn) endTLS() {
	t := c.tls
	if t == nil {
		return
	}
	if c.state == connHandshake {
		t.io.sock.SetDeadline(aLongTimeAgo)
	}
	c.tls = nil
}

// aLongTimeAgo is a deadline in the past: it ends a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)
