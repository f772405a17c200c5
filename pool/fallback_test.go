package pool

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/hclconfig/testcert"
	"github.com/hfork/hfork/listeners"
)

// openSocket opens a loopback socket the way the master does, through a
// listeners.Set.
func openSocket(t *testing.T) *listeners.Socket {
	t.Helper()
	const addr = "127.0.0.1:0"
	set := listeners.NewSet(nil)
	if err := set.Prepare([]listeners.Bind{{Addr: addr}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.CloseAll(false) })
	socks, err := set.Acquire([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	return socks[0]
}

func socketAddr(t *testing.T, s *listeners.Socket) string {
	t.Helper()
	sa, err := syscall.Getsockname(int(rawFD(t, s.File)))
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*syscall.SockaddrInet4)
	return (&net.TCPAddr{IP: in.Addr[:], Port: in.Port}).String()
}

// rawFD reads f's descriptor without Fd (which could make it blocking).
func rawFD(t *testing.T, f *os.File) uintptr {
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	rc.Control(func(v uintptr) { fd = v })
	return fd
}

// TestFallbackAnswers503: a queued and a new client get a 503 with
// Retry-After and the connection closed; after stop, the socket and its
// accept queue are still there for the workers.
func TestFallbackAnswers503(t *testing.T) {
	s := openSocket(t)
	addr := socketAddr(t, s)
	queued, err := net.Dial("tcp", addr) // waits in the accept queue
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
	f, err := startFallback([]*os.File{s.File}, true, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	f.setRetryAfter(2500 * time.Millisecond)
	queued.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(queued, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(queued), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "3" || !resp.Close {
		t.Errorf("queued client: %d Retry-After %q close %v, want 503, 3, close", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	r2, err := c.Get("http://" + addr + "/any")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 503 {
		t.Errorf("new client: %d, want 503", r2.StatusCode)
	}
	f.stop()

	// The master's socket still listens: a client queues, and a worker
	// taking over the socket accepts it.
	later, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("after stop the socket refuses: %v", err)
	}
	defer later.Close()
	ln, err := net.FileListener(s.File)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got.Close()
}

// TestFallbackCloses: a non-HTTP listener's client reads an error at once.
func TestFallbackCloses(t *testing.T) {
	s := openSocket(t)
	f, err := startFallback([]*os.File{s.File}, false, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	c, err := net.Dial("tcp", socketAddr(t, s))
	if errors.Is(err, syscall.ECONNRESET) {
		return // reset before the dial returned
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a reset or end of file", err)
	}
	t.Logf("client read: %v", err)
}

// TestFallbackTLS: a TLS listener is answered over TLS with the master's
// own copy of the certificates.
func TestFallbackTLS(t *testing.T) {
	s := openSocket(t)
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site", testcert.Options{Names: []string{"site.test"}})
	l := hclconfig.Listener{Name: "tls", Class: hclconfig.ClassAsync,
		TLS: hclconfig.TLS{Certificates: []hclconfig.Certificate{{Cert: cert, Key: key}}}}
	certs, err := ReadCertificates(l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p := New(Config{Listener: l, Certs: certs, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f, err := startFallback([]*os.File{s.File}, true, p.fallbackTLS(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "site.test"}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + socketAddr(t, s) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.TLS.PeerCertificates[0].DNSNames[0] != "site.test" || resp.Proto != "HTTP/1.1" {
		t.Errorf("TLS fallback: %d %s with %v", resp.StatusCode, resp.Proto, resp.TLS.PeerCertificates[0].DNSNames)
	}
}

// TestFallbackProxyProtocol: on a proxy_protocol listener the balancer's
// connections, v1 and v2 headers in raw bytes, get the 503; one that
// begins with a request instead is closed unanswered.
func TestFallbackProxyProtocol(t *testing.T) {
	s := openSocket(t)
	addr := socketAddr(t, s)
	f, err := startFallback([]*os.File{s.File}, true, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	v2 = append(v2, 192, 0, 2, 7, 127, 0, 0, 1, 0xc3, 0x50, 0x00, 0x50)
	send := func(header []byte) (*http.Response, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(append(header, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"...))
		return http.ReadResponse(bufio.NewReader(c), nil)
	}
	for name, header := range map[string][]byte{"v1": []byte("PROXY TCP4 192.0.2.7 127.0.0.1 50000 80\r\n"), "v2": v2} {
		resp, err := send(header)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("%s: %d, want 503", name, resp.StatusCode)
		}
	}
	if resp, err := send(nil); err == nil {
		resp.Body.Close()
		t.Errorf("no header: answered %d, want the connection closed", resp.StatusCode)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("no header: %v, want the connection closed", err)
	}
}
