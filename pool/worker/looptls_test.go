package worker

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/hclconfig/testcert"
	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/wire"
)

// tlsSite is loopSite over TLS, served from the event loop; its log is in
// siteLogs under the address.
func tlsSite(t testing.TB, edit func(*options)) (*testWorker, hclconfig.Listener) {
	t.Helper()
	return tlsSiteOf(t, loopSite(t), edit)
}

// tlsSiteOf serves l over TLS.
func tlsSiteOf(t testing.TB, l hclconfig.Listener, edit func(*options)) (*testWorker, hclconfig.Listener) {
	t.Helper()
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "c", testcert.Options{Names: []string{"localhost"}})
	l.TLS = hclconfig.TLS{Certificates: []hclconfig.Certificate{{Cert: cert, Key: key}}, MinVersion: hclconfig.TLS12}
	certs, err := certset.New([]wire.CertPEM{pemPair(t, cert, key)}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tw := startSite(t, l, nil, func(o *options) {
		o.Certificates = certs
		if edit != nil {
			edit(o)
		}
	})
	return tw, l
}

// dialTLS opens an HTTP/1.1 TLS connection to a test worker.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.InsecureSkipVerify, cfg.ServerName = true, "localhost"
	if cfg.NextProtos == nil {
		cfg.NextProtos = []string{"http/1.1"}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return c, bufio.NewReader(c)
}

func siteLog(addr string) string {
	v, _ := siteLogs.Load(addr)
	return v.(*logBuffer).String()
}

func TestLoopTLSServes(t *testing.T) {
	tw, l := tlsSite(t, nil)
	c, br := dialTLS(t, tw.addr, nil)

	// Keep-alive: one connection, answers one after another.
	for range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readAnswer(t, br, "GET")
		if resp.StatusCode != 200 || body != "hello\n" || resp.Close {
			t.Fatalf("keep-alive: %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
	}
	// Pipelining: three requests in one write, answered in order.
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []struct{ method, body string }{{"GET", "hello\n"}, {"GET", "file a\n"}, {"HEAD", ""}} {
		resp, body := readAnswer(t, br, want.method)
		if resp.StatusCode != 200 || body != want.body {
			t.Fatalf("pipelined answer %d: %d %q", i, resp.StatusCode, body)
		}
	}
	// A large static file, read in chunks and sealed: every byte arrives.
	io.WriteString(c, "GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readAnswer(t, br, "GET")
	want, err := os.ReadFile(filepath.Join(l.Routes[0].Static.Root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body != string(want) {
		t.Fatalf("big file: %d, %d bytes, equal=%v", resp.StatusCode, len(body), body == string(want))
	}
	// A proxy route: the upstream hears the client came over TLS, and a
	// 1 MiB answer passes whole.
	io.WriteString(c, "GET /proxy/echo HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || !strings.Contains(body, `X-Forwarded-Proto=["https"]`) {
		t.Fatalf("proxy: %d %q", resp.StatusCode, body)
	}
	io.WriteString(c, "GET /proxy/big HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != strings.Repeat("0123456789abcdef", 1<<16) {
		t.Fatalf("proxy big: %d, %d bytes", resp.StatusCode, len(body))
	}
	// A request with a body goes to net/http over the same tls.Conn, which
	// sees it as TLS; the connection goes on there.
	io.WriteString(c, "POST /proxy/post HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
	if resp, body := readAnswer(t, br, "POST"); resp.StatusCode != 200 || !strings.Contains(body, `"body"`) || !strings.Contains(body, `X-Forwarded-Proto=["https"]`) {
		t.Fatalf("handed over: %d %q", resp.StatusCode, body)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "hello\n" {
		t.Fatalf("after the handoff: %d %q", resp.StatusCode, body)
	}
	if log := siteLog(tw.addr); !strings.Contains(log, "event loop hands a connection to net/http") {
		t.Errorf("the POST did not go from the loop to net/http:\n%s", log)
	}

	// Connection: close ends with a close_notify: the client reads a clean
	// end of the TLS stream, not a cut.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	c2, br2 := dialTLS(t, tw.addr, nil)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp, body := readAnswer(t, br2, "GET"); body != "hello\n" || !resp.Close {
		t.Fatalf("Connection: close: %q close=%v", body, resp.Close)
	}
	if _, err := br2.ReadByte(); err != io.EOF {
		t.Fatalf("after the last answer: %v, want the EOF of a close_notify", err)
	}
}

func TestLoopTLSHTTP2GoesToNetHTTP(t *testing.T) {
	tw, _ := tlsSite(t, nil)
	hc := tlsClient("localhost", true)
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/", "/static/a.txt"} {
		resp, err := hc.Get("https://" + tw.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || len(body) == 0 {
			t.Fatalf("%s over h2: %d %s %q", path, resp.StatusCode, resp.Proto, body)
		}
	}
}

func TestLoopTLSGarbage(t *testing.T) {
	tw, _ := tlsSite(t, nil)
	// Bytes that are no TLS record after the handshake: the loop answers
	// with an alert, closes, and serves the next client.
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		raw, err := net.DialTimeout("tcp", tw.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, MaxVersion: v})
		raw.SetDeadline(time.Now().Add(waitLimit))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(raw, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		got, err := io.ReadAll(c)
		if len(got) > 0 || err == nil || !strings.Contains(err.Error(), "remote error") {
			t.Fatalf("TLS %x, after garbage: %q, %v; want the server's alert", v, got, err)
		}
	}
	c2, br := dialTLS(t, tw.addr, nil)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "hello\n" {
		t.Fatalf("next client: %d %q", resp.StatusCode, body)
	}
}

// A handshake that never finishes is cut at read_header_timeout, though
// the loop's own deadlines do not apply while it runs.
func TestLoopTLSHandshakeTimeout(t *testing.T) {
	l := loopSite(t)
	l.ReadHeaderTimeout = 300 * time.Millisecond
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "c", testcert.Options{Names: []string{"localhost"}})
	l.TLS = hclconfig.TLS{Certificates: []hclconfig.Certificate{{Cert: cert, Key: key}}}
	certs, err := certset.New([]wire.CertPEM{pemPair(t, cert, key)}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tw := startSite(t, l, nil, func(o *options) { o.Certificates = certs })
	// The start of a ClientHello and nothing more (the handshake's
	// goroutine times out), and nothing at all (the loop does).
	for _, hello := range [][]byte{{22, 3, 1}, nil} {
		raw, err := net.DialTimeout("tcp", tw.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.Write(hello)
		raw.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := io.ReadAll(raw); err != nil && !isReset(err) {
			t.Fatalf("a stalled handshake (% x): %v, want the server to close it", hello, err)
		}
	}
}

func TestLoopTLSDrain(t *testing.T) {
	tw, l := tlsSite(t, func(o *options) { o.IdleGrace = 200 * time.Millisecond })
	idle, idleBr := dialTLS(t, tw.addr, nil)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, idleBr, "GET")

	// A download in flight when the drain begins, to a client that reads
	// slowly: it finishes, then the connection ends with a close_notify.
	raw := dialSlowReader(t, tw.addr)
	slow := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	slow.SetDeadline(time.Now().Add(waitLimit))
	io.WriteString(slow, "GET /static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	sr := bufio.NewReader(slow)
	resp, err := http.ReadResponse(sr, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	// The head arrived: the file is being sent when the drain begins.
	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	got, err := io.ReadAll(resp.Body)
	want, _ := os.ReadFile(filepath.Join(l.Routes[0].Static.Root, "big.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file in flight during the drain: %d of %d bytes, %v", len(got), len(want), err)
	}
	if _, err := sr.ReadByte(); err != io.EOF {
		t.Fatalf("after the file: %v, want the EOF of a close_notify", err)
	}
	// The idle connection is closed after the grace, with a close_notify.
	if _, err := idleBr.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection in the drain: %v, want EOF", err)
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestLoopTLSResumes(t *testing.T) {
	tw, _ := tlsSite(t, nil)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(4)
		cfg := func() *tls.Config { return &tls.Config{ClientSessionCache: cache, MaxVersion: v} }
		c, br := dialTLS(t, tw.addr, cfg())
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, br, "GET") // a TLS 1.3 ticket comes after the handshake
		c.Close()
		c, br = dialTLS(t, tw.addr, cfg())
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "hello\n" {
			t.Fatalf("resumed: %d %q", resp.StatusCode, body)
		}
		if !c.ConnectionState().DidResume {
			t.Errorf("TLS %x: the second connection did not resume", v)
		}
	}
}

func TestLoopTLSResumesOnSibling(t *testing.T) {
	// Two workers with the master's seed open each other's tickets; one
	// with another seed (another master) does not.
	seed := certset.NewTicketSeed()
	a, _ := tlsSite(t, func(o *options) { o.TicketSeed = seed })
	b, _ := tlsSite(t, func(o *options) { o.TicketSeed = seed })
	other, _ := tlsSite(t, func(o *options) { o.TicketSeed = certset.NewTicketSeed() })
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, to := range []struct {
			addr   string
			resume bool
		}{{b.addr, true}, {other.addr, false}} {
			cache := tls.NewLRUClientSessionCache(4)
			cfg := func() *tls.Config { return &tls.Config{ClientSessionCache: cache, MaxVersion: v} }
			c, br := dialTLS(t, a.addr, cfg())
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			readAnswer(t, br, "GET")
			c.Close()
			c, br = dialTLS(t, to.addr, cfg())
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "hello\n" {
				t.Fatalf("on the sibling: %d %q", resp.StatusCode, body)
			}
			if got := c.ConnectionState().DidResume; got != to.resume {
				t.Errorf("TLS %x, ticket of one worker at another (same seed %v): resumed %v", v, to.resume, got)
			}
		}
	}
}

func TestLoopTLSWriteTimeout(t *testing.T) {
	// A TLS client that stops reading is cut off after write_timeout, for
	// a file sealed in chunks and for a proxied answer alike.
	for _, path := range []string{"/static/big.bin", "/proxy/big"} {
		t.Run(path, func(t *testing.T) {
			l := loopSite(t)
			l.WriteTimeout = 300 * time.Millisecond
			tw, _ := tlsSiteOf(t, l, nil)
			raw := dialSlowReader(t, tw.addr)
			c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			c.SetDeadline(time.Now().Add(waitLimit))
			const n = 20
			io.WriteString(c, strings.Repeat("GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n", n))
			waitUntil(t, "the cut at write_timeout", func() bool {
				return strings.Contains(siteLog(tw.addr), `"event loop closes a connection at its deadline" state=writing`)
			})
			if got, _ := io.Copy(io.Discard, c); got >= n<<20 {
				t.Fatalf("all %d bytes arrived; the connection should have been cut", got)
			}
		})
	}
}

// heldConn is a client's socket that lets its first writes through and
// holds back the next until release is closed; held is closed when one
// is held.
type heldConn struct {
	net.Conn
	pass    int
	release chan struct{}
	held    chan struct{}
	once    sync.Once
}

func newHeldConn(c net.Conn, pass int) *heldConn {
	return &heldConn{Conn: c, pass: pass, release: make(chan struct{}), held: make(chan struct{})}
}

func (h *heldConn) Write(b []byte) (int, error) {
	if h.pass == 0 {
		h.once.Do(func() { close(h.held) })
		<-h.release
	} else {
		h.pass--
	}
	return h.Conn.Write(b)
}

// handshakeToFinished starts a TLS client on a new connection whose
// ClientHello goes and whose Finished waits for the caller: once it
// returns, the server has sent its flight and its handshake waits. The
// channel gets the client once its handshake is done.
func handshakeToFinished(t *testing.T, addr string) (*heldConn, <-chan *tls.Conn) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(waitLimit))
	hc := newHeldConn(raw, 1)
	done := make(chan *tls.Conn, 1)
	go func() {
		c := tls.Client(hc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err := c.Handshake(); err != nil {
			t.Errorf("a held handshake, once let go: %v", err)
			c = nil
		}
		done <- c
	}()
	select {
	case <-hc.held:
	case <-time.After(waitLimit):
		t.Fatal("the server's flight did not come")
	}
	return hc, done
}

// Handshakes share the loop with keep-alive requests: handshakes waiting
// for their clients, half or nearly done, hold up no one, and many at
// once all complete while a keep-alive connection is served between them.
func TestLoopTLSHandshakesShareTheLoop(t *testing.T) {
	l := loopSite(t)
	l.ReadHeaderTimeout = time.Minute
	tw, _ := tlsSiteOf(t, l, nil)
	for range 8 {
		raw, _ := dialSite(t, tw.addr)
		raw.Write([]byte{22, 3, 1, 0}) // a record header's start
	}
	var held []*heldConn
	var heldDone []<-chan *tls.Conn
	for range 8 {
		hc, done := handshakeToFinished(t, tw.addr)
		held, heldDone = append(held, hc), append(heldDone, done)
	}
	keep, keepBr := dialTLS(t, tw.addr, nil)
	get := func() {
		io.WriteString(keep, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readAnswer(t, keepBr, "GET"); resp.StatusCode != 200 || body != "hello\n" {
			t.Fatalf("keep-alive: %d %q", resp.StatusCode, body)
		}
	}
	get()

	const clients, each = 16, 4
	errs := make(chan error, clients)
	cache := tls.NewLRUClientSessionCache(clients)
	for range clients {
		go func() {
			for range each {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tw.addr,
					&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, ClientSessionCache: cache})
				if err != nil {
					errs <- err
					return
				}
				c.SetDeadline(time.Now().Add(waitLimit))
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 200 || string(body) != "hello\n" {
						err = fmt.Errorf("answer %d %q", resp.StatusCode, body)
					}
				}
				c.Close()
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		get()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		get()
	}
	// The nearly done ones go on where they stopped.
	for _, hc := range held {
		close(hc.release)
	}
	for _, done := range heldDone {
		c := <-done
		if c == nil {
			t.FailNow()
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readAnswer(t, bufio.NewReader(c), "GET"); resp.StatusCode != 200 || body != "hello\n" {
			t.Fatalf("a held handshake, once let go: %d %q", resp.StatusCode, body)
		}
	}
}

// A client that says something other than a ClientHello is closed: a
// handshake record that does not parse gets an alert first, bytes that
// are no TLS record (plain HTTP) only the close; the next client is
// served.
func TestLoopTLSHandshakeGarbage(t *testing.T) {
	tw, _ := tlsSite(t, nil)
	for _, tc := range []struct {
		name  string
		hello []byte
		alert bool
	}{
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		{"a ClientHello that does not parse", []byte{22, 3, 1, 0, 8, 1, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef}, true},
	} {
		raw, _ := dialSite(t, tw.addr)
		raw.Write(tc.hello)
		got, err := io.ReadAll(raw)
		if err != nil && !isReset(err) {
			t.Fatalf("%s: %v, want the server to close", tc.name, err)
		}
		if tc.alert && (len(got) < 7 || got[0] != 21) {
			t.Errorf("%s: read % x, want an alert record", tc.name, got)
		}
		if !tc.alert && len(got) > 0 {
			t.Errorf("%s: read %q, want nothing", tc.name, got)
		}
	}
	c, br := dialTLS(t, tw.addr, nil)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "hello\n" {
		t.Fatalf("next client: %d %q", resp.StatusCode, body)
	}
}

// A drain lets a handshake in flight finish, and its request is answered
// (with Connection: close); one whose client stalls is cut at
// graceful_timeout, and the worker exits.
func TestLoopTLSDrainWithHandshakes(t *testing.T) {
	l := loopSite(t)
	l.ReadHeaderTimeout = time.Minute
	l.GracefulTimeout = 3 * time.Second
	tw, _ := tlsSiteOf(t, l, nil)
	stalled, _ := dialSite(t, tw.addr)
	stalled.Write([]byte{22, 3, 1})
	hc, done := handshakeToFinished(t, tw.addr)

	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	// STOPPING=1 comes before the loop takes the drain up: a handshake
	// ended before that is answered as any other.
	logs, _ := siteLogs.Load(tw.addr)
	waitUntil(t, "the loop draining", func() bool {
		return strings.Contains(logs.(*logBuffer).String(), `"event loop draining"`)
	})
	close(hc.release)
	c := <-done
	if c == nil {
		t.FailNow()
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "hello\n" || !resp.Close {
		t.Fatalf("the handshake in flight at the drain: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after its answer: %v, want the EOF of a close_notify", err)
	}
	if _, err := io.ReadAll(stalled); err != nil && !isReset(err) {
		t.Fatalf("the stalled handshake: %v, want it closed", err)
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}
