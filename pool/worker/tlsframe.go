package worker

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Strict framing over TLS. net/http handshakes a *tls.Conn itself and
// then reads request heads from it, above any connection the worker
// could wrap, so the framer (framing.go) would never see them. A TLS
// listener's worker therefore runs each handshake itself, on a goroutine
// of the connection's own and under the handshake's deadline, and hands
// net/http the connection once it is done: an HTTP/2 one as the
// *tls.Conn, which net/http serves through ALPN (HTTP/2 has a framing of
// its own), an HTTP/1 one as a framedTLS, which net/http takes for plain
// HTTP and which reads through a framer; ServeHTTP gives its requests
// their r.TLS back. A slow handshake holds its own goroutine, never the
// accept.

// acceptResult is what a TLS listener's Accept hands net/http.
type acceptResult struct {
	c   net.Conn
	err error
}

// acceptTLS returns the next connection whose handshake is over, or the
// accept's error.
func (l *gatedListener) acceptTLS() (net.Conn, error) {
	l.tlsLoop.Do(func() {
		l.handshaken = make(chan acceptResult)
		go l.acceptLoop()
	})
	select {
	case r := <-l.handshaken:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// acceptLoop accepts for acceptTLS and starts each handshake.
func (l *gatedListener) acceptLoop() {
	for {
		tc, err := l.accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			// net/http backs off from a temporary error, or stops.
			select {
			case l.handshaken <- acceptResult{err: err}:
			case <-l.done:
				return
			}
			continue
		}
		go l.handshake(tc)
	}
}

// handshakeTimeout is what net/http allows a handshake: the shortest of
// the read timeouts.
func (w *worker) handshakeTimeout() time.Duration {
	d := w.srv.ReadHeaderTimeout
	if rt := w.srv.ReadTimeout; rt > 0 && (d <= 0 || rt < d) {
		d = rt
	}
	return d
}

// handshake runs tc's TLS handshake and hands the connection on; a
// failed one is closed, and logged at debug as net/http logs its own. A
// handshake that ends after the listener closed (a drain) is still
// served, as a plain accept serves one that raced the close (the kernel
// gave it to this process), without holding the drain up: the drain
// counts it among the worker's connections from its accept.
func (l *gatedListener) handshake(tc *trackedConn) {
	conn := tls.Server(tc, l.w.tls)
	if d := l.w.handshakeTimeout(); d > 0 {
		tc.SetReadDeadline(time.Now().Add(d))
	}
	if err := conn.Handshake(); err != nil {
		l.w.log.Debug("tls handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	tc.SetReadDeadline(time.Time{})
	state := conn.ConnectionState()
	h2 := state.NegotiatedProtocol == "h2"
	tc.mu.Lock()
	tc.alpn, tc.h2 = true, h2
	tc.mu.Unlock()
	var out net.Conn = conn
	if !h2 {
		tc.tlsState = &state
		out = &framedTLS{Conn: conn, tc: tc, fr: l.w.newFramer(&tc.refused)}
	}
	select {
	case l.handshaken <- acceptResult{c: out}:
	case <-l.done:
		go l.w.srv.Serve(&oneConn{c: out, addr: l.Addr()})
	}
}

// oneConn is a listener of one connection, for net/http to serve a
// connection after its listener closed.
type oneConn struct {
	c    net.Conn
	addr net.Addr
}

func (o *oneConn) Accept() (net.Conn, error) {
	if c := o.c; c != nil {
		o.c = nil
		return c, nil
	}
	return nil, net.ErrClosed
}

func (o *oneConn) Close() error   { return nil }
func (o *oneConn) Addr() net.Addr { return o.addr }

// framedTLS is an HTTP/1 TLS connection whose request heads a framer
// checks before net/http reads them. It is not a *tls.Conn, so net/http
// serves it as plain HTTP.
type framedTLS struct {
	*tls.Conn
	tc *trackedConn
	fr *framer
}

func (f *framedTLS) Read(p []byte) (int, error) {
	if f.tc.raw.Load() && f.fr.state != frRefused {
		f.fr.state = frRaw // hijacked: what follows is the app's
	}
	return f.fr.read(f.Conn.Read, p)
}

// withTLS gives r the TLS state of the connection it came on, when
// net/http served it as plain HTTP (a framedTLS).
func withTLS(r *http.Request, c *trackedConn) {
	if r.TLS == nil && c.tlsState != nil {
		r.TLS = c.tlsState
	}
}
