package evloop

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
)

// handoff gives c to net/http with data, the bytes read and not answered.
func (l *Loop) handoff(c *conn, data []byte) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		line, _, _ := bytes.Cut(data, []byte("\n"))
		l.log.Debug("event loop hands a connection to net/http", "request", string(line[:min(len(line), 80)]))
	}
	if c.tls != nil {
		l.handoffTLS(c, data)
		return
	}
	l.forgetConn(c)
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f) // a dup, in Go's poller
	f.Close()
	if err != nil {
		l.host.Release()
		l.log.Warn("handing a connection to net/http failed", "err", err)
		return
	}
	pc := &prefixConn{Conn: nc, prefix: append([]byte(nil), data...), remote: ppAddr(c)}
	// Adopt registers it before the drain can look; the slot goes with it.
	// c.ip is the peer Admit counted, not the PROXY header's client.
	l.handoffs.push(l.host.Adopt(pc, c.ip))
}

// prefixConn reads the bytes the loop already read before the socket's.
type prefixConn struct {
	net.Conn
	prefix []byte
	remote net.Addr // the PROXY header's client; nil: the peer
	raw    net.Conn // the socket under Conn when Conn is a tls.Conn
}

func (p *prefixConn) RemoteAddr() net.Addr {
	if p.remote != nil {
		return p.remote
	}
	return p.Conn.RemoteAddr()
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// ReadFrom keeps sendfile(2): net/http copies a file to the conn it
// serves, which would otherwise not reach the socket's ReadFrom.
func (p *prefixConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := p.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{p.Conn}, r)
}

// CloseWrite shuts the socket's write side, for a close that lingers.
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn lets the drain peek at the socket.
func (p *prefixConn) SyscallConn() (syscall.RawConn, error) {
	if p.raw != nil {
		return p.raw.(syscall.Conn).SyscallConn()
	}
	return p.Conn.(syscall.Conn).SyscallConn()
}

// TLSConnectionState is the handshake's outcome of a TLS connection the
// loop served before net/http, which sees no *tls.Conn to take it from.
func (p *prefixConn) TLSConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := p.Conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// handoffQueue carries handed-over connections to net/http's Serve.
type handoffQueue struct {
	mu     sync.Mutex
	q      []net.Conn
	closed bool
	ready  chan struct{}
}

func newHandoffQueue() *handoffQueue { return &handoffQueue{ready: make(chan struct{}, 1)} }

func (h *handoffQueue) push(c net.Conn) {
	h.mu.Lock()
	h.q = append(h.q, c)
	h.mu.Unlock()
	h.wake()
}

func (h *handoffQueue) wake() {
	select {
	case h.ready <- struct{}{}:
	default:
	}
}

// close ends Accept once the queue is empty.
func (h *handoffQueue) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.wake()
}

// handoffListener is what net/http serves in a worker with an event loop:
// the connections the loop handed over. One goroutine calls Accept.
type handoffListener struct {
	q    *handoffQueue
	addr net.Addr
}

func (h handoffListener) Accept() (net.Conn, error) {
	for {
		h.q.mu.Lock()
		if len(h.q.q) > 0 {
			c := h.q.q[0]
			h.q.q[0] = nil
			h.q.q = h.q.q[1:]
			h.q.mu.Unlock()
			return c, nil
		}
		closed := h.q.closed
		h.q.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		<-h.q.ready
	}
}

func (h handoffListener) Close() error { return nil }

func (h handoffListener) Addr() net.Addr { return h.addr }

// writerOnly hides a writer's ReadFrom, so io.Copy does not come back here.
type writerOnly struct{ io.Writer }
