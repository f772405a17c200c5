package worker

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/internal/certset"
)

// Fallbacks for a Listener built without the limits hclconfig fills in
// (tests, or a Spec from an older master).
const (
	fallbackReadHeaderTimeout = 10 * time.Second
	fallbackMaxHeaderBytes    = 1 << 20
)

// newServer builds the http.Server every listener of the worker serves on,
// with the listener's limits: max_header_bytes (net/http answers 431 past
// it, with 4 KiB of slack), read_header_timeout (also the TLS handshake's
// deadline: net/http takes the shortest of the read timeouts), read_timeout,
// and keepalive as the idle timeout. write_timeout is the connection's
// (sendtimeout.go).
//
// It speaks HTTP/1.1, and HTTP/2 on a TLS listener of a class that keeps
// connections alive: hfork's own HTTP/2 server where newH2Server says so
// (its drain sends GOAWAY at once), net/http's otherwise, where the drain
// relies on "Connection: close", which that server turns into a GOAWAY.
// An idle HTTP/2 connection closes itself with a GOAWAY after keepalive.
func (w *worker) newServer() *http.Server {
	l := w.cfg
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: cmp.Or(l.ReadHeaderTimeout, fallbackReadHeaderTimeout),
		ReadTimeout:       l.ReadTimeout,
		// No WriteTimeout: write_timeout is the connection's, per piece
		// (sendtimeout.go).
		IdleTimeout:    w.limits.idle,
		MaxHeaderBytes: cmp.Or(l.MaxHeaderBytes, fallbackMaxHeaderBytes),
		ConnState:      w.connState,
		ConnContext:    w.connContext,
		ErrorLog:       log.New(serverLog{w.log}, "", 0),
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(w.h2())
	srv.Protocols = &p
	if w.h2s != nil {
		// ALPN stays net/http's; its h2 connections come here.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": w.h2s.serveH2}
	}
	// Set before serving, never during a drain: with keep-alives off, every
	// response says "Connection: close" and each connection carries one
	// request.
	srv.SetKeepAlivesEnabled(w.limits.keepAlive)
	return srv
}

// h2 reports whether the worker offers HTTP/2: over TLS only (ALPN), and
// not for the sync class, which serves one request per connection.
func (w *worker) h2() bool {
	return w.cfg.TLS.Enabled() && w.cfg.Class != hclconfig.ClassSync && w.limits.keepAlive
}

// tlsConfig is the handshake side of a TLS listener: certificates by SNI
// from certs, the configured minimum version, and ALPN.
func (w *worker) tlsConfig(certs *certset.Set) *tls.Config {
	minVersion := uint16(tls.VersionTLS12)
	if w.cfg.TLS.MinVersion == hclconfig.TLS13 {
		minVersion = tls.VersionTLS13
	}
	protos := []string{"http/1.1"}
	if w.h2() {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{MinVersion: minVersion, GetCertificate: certs.GetCertificate, NextProtos: protos}
}

// serverLog receives net/http's own log lines. Failed handshakes and
// broken HTTP/2 prefaces are what scanners and impatient clients cause all
// day on an internet-facing port: they are debug detail, not warnings.
type serverLog struct{ log *slog.Logger }

func (s serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	for _, noise := range []string{"http: TLS handshake error", "http2: server: error reading preface", "http2: received GOAWAY"} {
		if strings.HasPrefix(msg, noise) {
			level = slog.LevelDebug
			break
		}
	}
	s.log.Log(context.Background(), level, "http server", "detail", msg)
	return len(p), nil
}

// reqState is the worker's view of the request in flight on a connection,
// and the ResponseWriter the app writes to. Like reqSlot it lives in the
// connection and is reused, so the hot path allocates nothing.
type reqState struct {
	slot      reqSlot
	w         *worker
	rw        http.ResponseWriter
	committed bool // the response header is decided
	thread    bool // holds a thread slot
	dl        *requestDeadline
	done      atomic.Bool
	route     int   // for the metrics
	status    int   // the status written, 0 until then
	bytes     int64 // body bytes written
}

// ServeHTTP wraps the app: it takes a thread slot (thread class), tracks
// the request while it is in flight, sets the request deadline (async
// class) and, during a drain, marks the response "Connection: close".
func (w *worker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var rs *reqState
	c, ok := r.Context().Value(connKey{}).(*trackedConn)
	if ok {
		withTLS(r, c) // an HTTP/1 TLS request, served as plain (tlsframe.go)
		if status := c.refused.Load(); status != 0 && r.Host == rejectHost {
			// The framer's stand-in for a head it refused (framing.go).
			c.handled.Store(true) // logged here, not by logRefused
			refuseHead(rw, int(status))
			w.log.Debug("request refused before the routes", "remote", c.RemoteAddr().String(),
				"reason", "answered "+strconv.Itoa(int(status))+" "+http.StatusText(int(status))+" (framing)")
			return
		}
	}
	if ok && r.TLS == nil {
		// A TLS connection the event loop served first reaches net/http
		// under a wrapper; the handshake's state is the loop's to give.
		if s, isTLS := c.Conn.(interface {
			TLSConnectionState() (tls.ConnectionState, bool)
		}); isTLS {
			if cs, done := s.TLSConnectionState(); done {
				r.TLS = &cs
			}
		}
	}
	switch {
	case ok && r.ProtoMajor == 1:
		rs = &c.req
		c.handled.Store(true)
	case ok:
		// HTTP/2 runs many requests on one connection at once, so each
		// needs its own state.
		rs = new(reqState)
		c.handled.Store(true)
	default:
		rs = new(reqState)
	}
	if w.limits.bodyBuffer > 0 {
		w.bufferBody(r) // before the slot (classes.go)
	}
	if w.threads != nil {
		w.threads <- struct{}{}
	}
	rs.w, rs.rw, rs.committed, rs.thread, rs.dl = w, rw, false, w.threads != nil, nil
	rs.done.Store(false)
	rs.route, rs.status, rs.bytes = w.metrics.route(r.Host, r.URL.Path), 0, 0
	w.track.begin(&rs.slot, r.Method, r.URL.Path, time.Now())
	defer w.finish(rs, false)
	// Read once: a swap (swap.go) leaves this request, and a stream it
	// upgrades to, on the table it began with.
	t := w.tab.Load()
	t.refs.Add(1)
	defer t.release()
	if t.deadline > 0 {
		rs.dl = newRequestDeadline(r.Context(), t.deadline)
		r = r.WithContext(rs.dl)
	}
	t.handler.ServeHTTP(rs, r)
	// A handler that wrote nothing gets its response from net/http after
	// this returns, from the header map as the handler left it.
	rs.commit()
}

// finish ends the request of rs once: when the handler returns, or earlier
// when the connection is upgraded (then the request stops counting as in
// flight, gives its thread slot back and loses its deadline, while the
// stream lives on).
func (w *worker) finish(rs *reqState, upgraded bool) {
	if !rs.done.CompareAndSwap(false, true) {
		return
	}
	start := rs.slot.start
	served, ok := w.track.end(&rs.slot)
	if rs.thread {
		rs.thread = false
		<-w.threads
	}
	if rs.dl != nil {
		if upgraded {
			rs.dl.lift()
		} else {
			rs.dl.end()
		}
	}
	if ok {
		status := rs.status
		if status == 0 {
			status = http.StatusOK // what net/http sends for a handler that wrote nothing
		}
		w.metrics.observe(rs.route, status, time.Since(start), rs.bytes)
		w.checkRecycle(served)
	}
}

// served counts a request the event loop answered.
func (w *worker) served() {
	w.checkRecycle(w.track.served.Add(1))
}

// checkRecycle asks for a replacement once served reaches max_requests.
func (w *worker) checkRecycle(served uint64) {
	if w.maxRequests > 0 && served >= w.maxRequests && w.recycle.CompareAndSwap(false, true) {
		close(w.recycleCh)
	}
}

// commit is called when the response header is about to be written: from
// then on it cannot change, so this is the last moment a drain can ask for
// "Connection: close". net/http honours the handler's header and closes
// the connection after the response.
func (rs *reqState) commit() {
	if rs.committed {
		return
	}
	rs.committed = true
	if rs.w.draining.Load() {
		rs.rw.Header().Set("Connection", "close")
	}
}

func (rs *reqState) Header() http.Header { return rs.rw.Header() }

func (rs *reqState) WriteHeader(code int) {
	if code >= 200 {
		// 1xx responses are interim; 101 hands the connection over.
		rs.commit()
	}
	if rs.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rs.status = code
	}
	rs.rw.WriteHeader(code)
}

func (rs *reqState) Write(p []byte) (int, error) {
	rs.commit()
	n, err := rs.rw.Write(p)
	rs.bytes += int64(n)
	return n, err
}

func (rs *reqState) WriteString(s string) (int, error) {
	rs.commit()
	n, err := io.WriteString(rs.rw, s)
	rs.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path for static files.
func (rs *reqState) ReadFrom(r io.Reader) (int64, error) {
	rs.commit()
	var n int64
	var err error
	if rf, ok := rs.rw.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{rs.rw}, r)
	}
	rs.bytes += n
	return n, err
}

func (rs *reqState) Flush() { _ = rs.FlushError() }

// FlushError is what http.ResponseController calls.
func (rs *reqState) FlushError() error {
	rs.commit()
	return http.NewResponseController(rs.rw).Flush()
}

func (rs *reqState) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rs.committed = true // the app writes its own response, if any
	if rs.status == 0 {
		// What a hijacker writes is not seen; hijacking is how apps
		// upgrade, so it counts as 101.
		rs.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(rs.rw).Hijack()
}

// Unwrap lets http.ResponseController reach net/http's writer for
// deadlines and full duplex.
func (rs *reqState) Unwrap() http.ResponseWriter { return rs.rw }
