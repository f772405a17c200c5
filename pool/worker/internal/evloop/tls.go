package evloop

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// A TLS connection's handshake runs on the loop's thread (tlshs.go). Once
// it is done, an "h2" connection goes to net/http's HTTP/2 server; any
// other stays with the loop, whose record layer is crypto/tls's own driven
// over memory (tlsIO): the loop reads ciphertext from the socket into it
// and plaintext out of the tls.Conn, and an answer is one tls.Conn.Write
// of head and body, sealed into full records in memory and written to the
// socket like a plain answer.

// tlsFileChunk is how much of a file one seal takes: four full records.
const tlsFileChunk = 64 << 10

// tlsConn is a TLS client connection's record layer.
type tlsConn struct {
	tc *tls.Conn
	io tlsIO
	hs *handshake // the handshake while it runs (tlshs.go)
}

// tlsIO is the transport under a tls.Conn: the loop's memory, and after a
// handoff to net/http the socket (sock), once what is left in memory is
// taken. Read takes the ciphertext in; when it is dry, a handshake yields
// to the loop until more comes (tlshs.go), and the record layer gets a
// temporary error, which crypto/tls passes up without poisoning the
// connection. Write appends to out and never fails (a failed write would
// be sticky).
type tlsIO struct {
	sock net.Conn
	in   []byte // ciphertext read and not yet taken
	out  []byte // sealed records not yet written
	// yield, while a handshake runs, hands the thread back to the loop
	// until more ciphertext came; false, or stopped, means the handshake
	// is to end.
	yield   func(struct{}) bool
	stopped bool
	// remote is the PROXY header's client, for a connection handed to
	// net/http; nil: the socket's peer.
	remote net.Addr
}

// errDry is what a tls.Conn reads once the ciphertext in memory is taken.
var errDry = dryError{}

type dryError struct{}

func (dryError) Error() string   { return "evloop: no more ciphertext yet" }
func (dryError) Timeout() bool   { return true }
func (dryError) Temporary() bool { return true }

func (t *tlsIO) Read(b []byte) (int, error) {
	for len(t.in) == 0 {
		switch {
		case t.sock != nil:
			return t.sock.Read(b)
		case t.yield == nil:
			return 0, errDry
		case !t.yield(struct{}{}) || t.stopped:
			return 0, errStopped
		}
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
	if t.remote != nil {
		return t.remote
	}
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

// handoffTLS gives c to net/http with data, the plaintext read and not
// answered: net/http reads and writes through the same tls.Conn, now over
// the socket.
func (l *Loop) handoffTLS(c *conn, data []byte) {
	t := c.tls
	nc := l.socketForNetHTTP(c)
	if nc == nil {
		return
	}
	t.io.sock, t.io.remote = nc, ppAddr(c)
	pc := &prefixConn{Conn: t.tc, prefix: append([]byte(nil), data...), raw: nc, remote: t.io.remote}
	l.handoffs.push(l.host.Adopt(pc, c.ip))
}

// socketForNetHTTP takes c out of the loop and makes its socket one in
// Go's poller, for net/http to go on with; nil when that failed (out of
// fds, most likely), and then c is gone as if closed.
func (l *Loop) socketForNetHTTP(c *conn) net.Conn {
	l.forgetConn(c)
	nc, err := sockConn(c.fd)
	rawsys.Close(c.fd)
	if err != nil {
		l.host.Release()
		if c.ip.IsValid() {
			l.host.Leave(c.ip)
		}
		l.log.Warn("handing a connection to net/http failed", "err", err)
		return nil
	}
	return nc
}

// readableTLS is readable for a TLS connection: it reads the ciphertext
// that arrived, opens every whole record, and answers what it holds.
func (l *Loop) readableTLS(c *conn) {
	n, st := read(c.fd, l.rbuf)
	if st == ioClosed {
		l.close(c)
		return
	}
	c.tls.io.in = l.rbuf[:n]
	l.openTLS(c, n > 0)
}

// openTLS opens the ciphertext in c's tlsIO and what the tls.Conn holds
// of it, and answers the requests in it; arrived says bytes came.
func (l *Loop) openTLS(c *conn, arrived bool) {
	p, err := l.unseal(c, l.tbuf[:0])
	l.tbuf = p[:0]
	if err != nil {
		// End of stream, a close_notify, or records that do not open
		// (crypto/tls sealed an alert for them): nothing more is served.
		l.sendTLS(c)
		l.close(c)
		return
	}
	if len(p) == 0 && !arrived {
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
	if t == nil || t.io.sock != nil || t.hs != nil {
		return
	}
	if t.tc.CloseWrite() == nil {
		l.sendTLS(c)
	}
}

// endTLS lets go of c's record layer when the loop closes it; a handshake
// still running is ended.
func (l *Loop) endTLS(c *conn) {
	if t := c.tls; t != nil && t.hs != nil {
		l.endHandshake(t)
	}
	c.tls = nil
}
