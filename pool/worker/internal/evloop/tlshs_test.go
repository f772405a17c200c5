package evloop

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig/testcert"
)

// serverTLS is a loop's TLS config with a certificate for names.
func serverTLS(t testing.TB, names ...string) *tls.Config {
	t.Helper()
	certPath, keyPath := testcert.Write(t, t.TempDir(), "c", testcert.Options{Names: names})
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
}

// heldConn is a client's socket that lets its first writes through and
// holds back the rest, and with holdReads every read, until release is
// closed; held is closed when the first call is held.
type heldConn struct {
	net.Conn
	passWrites int
	holdReads  bool
	release    chan struct{}
	held       chan struct{}
	once       sync.Once
}

func newHeldConn(c net.Conn, passWrites int, holdReads bool) *heldConn {
	return &heldConn{Conn: c, passWrites: passWrites, holdReads: holdReads, release: make(chan struct{}), held: make(chan struct{})}
}

func (h *heldConn) hold() {
	h.once.Do(func() { close(h.held) })
	<-h.release
}

func (h *heldConn) Write(b []byte) (int, error) {
	if h.passWrites == 0 {
		h.hold()
	} else {
		h.passWrites--
	}
	return h.Conn.Write(b)
}

func (h *heldConn) Read(b []byte) (int, error) {
	if h.holdReads {
		h.hold()
	}
	return h.Conn.Read(b)
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// getOver sends one request over c and reads its answer.
func getOver(c net.Conn, path string) (int, string, error) {
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// A handshake waiting for the client takes nothing but the connection's
// own socket: no dup of it for Go's poller (a flood of half-done
// handshakes would otherwise cost two fds each), and the handshakes go on
// where they stopped once the clients do.
func TestLoopTLSHandshakeHoldsOneFD(t *testing.T) {
	tl := startLoop(t, 64, func(c *Config) { c.TLS = serverTLS(t) })
	before := openFDs(t)
	const n = 8
	var held []*heldConn
	done := make(chan error, n)
	for range n {
		raw, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		// The ClientHello goes; the client's Finished waits, so the
		// server's flight has come and its handshake waits.
		hc := newHeldConn(raw, 1, false)
		held = append(held, hc)
		go func() {
			c := tls.Client(hc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err := c.Handshake(); err != nil {
				done <- err
				return
			}
			status, body, err := getOver(c, "/")
			if err == nil && (status != 200 || body != "hi\n") {
				err = fmt.Errorf("answer %d %q", status, body)
			}
			done <- err
		}()
		<-hc.held
	}
	// Each connection is two fds in this process: the client's socket
	// and the loop's.
	if got := openFDs(t) - before; got > 2*n {
		t.Errorf("%d handshakes waiting hold %d more fds, want at most %d", n, got, 2*n)
	}
	for _, hc := range held {
		close(hc.release)
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// A server flight the socket cannot take at once (a large certificate to
// a client that does not read yet) waits for EPOLLOUT, and the handshake
// completes once the client reads.
func TestLoopTLSFlightWaitsForSocket(t *testing.T) {
	names := make([]string, 1500)
	for i := range names {
		names[i] = fmt.Sprintf("name-%04d.example.test", i)
	}
	cfg := serverTLS(t, names...)
	tl := startLoop(t, 4, func(c *Config) {
		c.TLS = cfg
		// Accepted sockets inherit the listener's small send buffer.
		rc, err := c.Listeners[0].(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096) })
	})
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", tl.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	hc := newHeldConn(raw, -1, true)
	c := tls.Client(hc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	done := make(chan error, 1)
	go func() { done <- c.Handshake() }()
	tl.log.waitLog(t, "tls handshake waits for the socket")
	close(hc.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if status, body, err := getOver(c, "/"); err != nil || status != 200 || body != "hi\n" {
		t.Fatalf("after the handshake: %d %q %v", status, body, err)
	}
}

// Stop ends handshakes that wait for their clients: the loop returns,
// and each client sees its connection closed.
func TestLoopTLSStopEndsHandshakes(t *testing.T) {
	tl := startLoop(t, 8, func(c *Config) { c.TLS = serverTLS(t); c.ReadHeaderTimeout = time.Hour })
	var raws []net.Conn
	for range 4 {
		raw, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		// Half a ClientHello's record header: the handshake waits.
		if _, err := raw.Write([]byte{22, 3, 1}); err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	// The waiting handshakes hold up no one.
	c, err := tls.Dial("tcp", tl.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if status, _, err := getOver(c, "/"); err != nil || status != 200 {
		t.Fatalf("beside the waiting handshakes: %d %v", status, err)
	}
	tl.Stop()
	tl.wait(t)
	for i, raw := range raws {
		if n, err := raw.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d read %d bytes after Stop, want it closed", i, n)
		}
	}
}

// BenchmarkLoopTLSHandshake is one connection per request, as wrk -H
// "Connection: close" makes them: a TLS 1.3 handshake that resumes by
// ticket over X25519 (what wrk's OpenSSL offers), one request, the close.
// Client and loop run in this process.
func BenchmarkLoopTLSHandshake(b *testing.B) {
	tl := startLoop(b, 64, func(c *Config) { c.TLS = serverTLS(b) })
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, ClientSessionCache: tls.NewLRUClientSessionCache(8),
		CurvePreferences: []tls.CurveID{tls.X25519}}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		c, err := tls.Dial("tcp", tl.addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
	}
}

// splitConn writes the first k bytes of its first write, closes sent,
// and holds the rest until release is closed.
type splitConn struct {
	net.Conn
	k             int
	sent, release chan struct{}
	split         bool
}

func (s *splitConn) Write(b []byte) (int, error) {
	if s.split || len(b) <= s.k {
		return s.Conn.Write(b)
	}
	s.split = true
	_, err := s.Conn.Write(b[:s.k])
	close(s.sent)
	if err != nil {
		return 0, err
	}
	<-s.release
	n, err := s.Conn.Write(b[s.k:])
	return s.k + n, err
}

// A client that sends part of its first record and stalls holds no
// handshake coroutine: its bytes wait with the connection, a handshake
// beside it completes, and once the rest comes (the header split, or the
// body) its own handshake completes from what was kept.
func TestLoopTLSPartialHelloHoldsNoCoroutine(t *testing.T) {
	tl := startLoop(t, 16, func(c *Config) { c.TLS = serverTLS(t) })
	var splits []*splitConn
	done := make(chan error, 3)
	for _, k := range []int{3, 5, 100} { // in the header, the header alone, in the body
		raw, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		sc := &splitConn{Conn: raw, k: k, sent: make(chan struct{}), release: make(chan struct{})}
		splits = append(splits, sc)
		go func() {
			c := tls.Client(sc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			status, body, err := getOver(c, "/")
			if err == nil && (status != 200 || body != "hi\n") {
				err = fmt.Errorf("answer %d %q", status, body)
			}
			done <- err
		}()
	}
	for _, sc := range splits {
		<-sc.sent
	}
	// The whole handshake beside them takes round trips through the loop:
	// by its end the loop has read what the split ones sent.
	handshakeAndGet(t, tl.addr)
	if busy, live := tl.hsPool.busy.Load(), tl.hsPool.live.Load(); busy != 0 || live > 1 {
		t.Fatalf("with three first records incomplete: %d coroutines busy, %d in all; want none busy and at most the one that served", busy, live)
	}
	for _, sc := range splits {
		close(sc.release)
	}
	for range splits {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// Connections that sent three bytes of a ClientHello and stalled are cut
// at read_header_timeout, as a plain connection with part of a head is;
// meanwhile they hold no coroutine and a handshake beside them completes.
func TestLoopTLSStalledHellosCutAtHeadTimeout(t *testing.T) {
	tl := startLoop(t, 16, func(c *Config) { c.TLS = serverTLS(t); c.ReadHeaderTimeout = time.Second })
	const n = 8
	var raws []net.Conn
	for range n {
		raw, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := raw.Write([]byte{22, 3, 1}); err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	handshakeAndGet(t, tl.addr)
	if busy := tl.hsPool.busy.Load(); busy != 0 {
		t.Fatalf("%d stalled ClientHellos hold %d coroutines, want none", n, busy)
	}
	for i, raw := range raws {
		if k, err := raw.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stalled connection %d: read %d bytes, %v; want it closed by the loop", i, k, err)
		}
	}
	if got := strings.Count(tl.log.String(), `at its deadline" state=reading`); got != n {
		t.Errorf("%d connections closed at their head deadline, want %d:\n%s", got, n, tl.log.String())
	}
}

// A first record crypto/tls refuses from its header alone is refused at
// once, as before the loop gathered first records: an HTTP request is
// closed without a word, an SSLv2 hello and an oversized record get
// crypto/tls's alert.
func TestLoopTLSFirstRecordRefused(t *testing.T) {
	tl := startLoop(t, 16, func(c *Config) { c.TLS = serverTLS(t) })
	for _, tc := range []struct {
		name      string
		send, got []byte
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), nil},
		{"sslv2", []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, []byte{21, 3, 1, 0, 2, 2, 70}},
		{"oversized", []byte{22, 3, 1, 0x48, 0x01, 1}, []byte{21, 3, 1, 0, 2, 2, 22}},
	} {
		raw, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := raw.Write(tc.send); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(raw)
		if err != nil {
			t.Fatalf("%s: %v after %v", tc.name, err, got)
		}
		if !bytes.Equal(got, tc.got) {
			t.Errorf("%s: the loop answered %v, want %v", tc.name, got, tc.got)
		}
	}
	if busy := tl.hsPool.busy.Load(); busy != 0 {
		t.Errorf("%d coroutines busy after the refusals", busy)
	}
}

// Connections holding part of a first record are reusable ones with part
// of a head: at worker_connections, a new client in the accept queue gets
// the slot of the oldest, long before read_header_timeout.
func TestLoopTLSPartialHellosEvicted(t *testing.T) {
	const slots = 4
	tl := startLoop(t, slots, func(c *Config) {
		c.TLS, c.Evict, c.ReadHeaderTimeout = serverTLS(t), true, time.Hour
	})
	var raws []net.Conn
	for range slots {
		raw, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := raw.Write([]byte{22, 3, 1, 2, 0, 1}); err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	// The fifth waits in the accept queue until one of them is evicted.
	handshakeAndGet(t, tl.addr)
	if n := tl.host.evicted.Load(); n < 1 {
		t.Fatalf("served with %d evictions", n)
	}
	if _, err := raws[0].Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the oldest partial ClientHello: %v, want it closed", err)
	}
}
