package evloop

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker/app"
)

// headerFirst is a client's socket whose first write goes out after the
// PROXY header, in one send with it (as a load balancer's first segment
// carries both), or, with split, in sends of its own: the header's first
// bytes, the rest of it, then the client's own.
type headerFirst struct {
	net.Conn
	header string
	split  bool
}

func (h *headerFirst) Write(b []byte) (int, error) {
	if h.header == "" {
		return h.Conn.Write(b)
	}
	hdr := h.header
	h.header = ""
	if h.split {
		for _, part := range []string{hdr[:7], hdr[7:]} {
			if _, err := io.WriteString(h.Conn, part); err != nil {
				return 0, err
			}
		}
		return h.Conn.Write(b)
	}
	if _, err := h.Conn.Write(append([]byte(hdr), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// TestLoopTLSProxyProtocol: on a TLS listener with proxy_protocol the
// loop takes the PROXY header off before the ClientHello, in whatever
// pieces it comes, and the header's client is the one the access log
// names and net/http sees on a connection handed over, HTTP/1.1 or
// HTTP/2; a ClientHello without a header is refused unanswered.
func TestLoopTLSProxyProtocol(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	al, err := app.OpenAccessLog(hclconfig.AccessLog{File: logPath, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := serverTLS(t)
	cfg.NextProtos = []string{"h2", "http/1.1"}
	tl := startLoop(t, 16, func(c *Config) { c.Access, c.ProxyProtocol, c.TLS = al, true, cfg })
	dialTLS := func(header string, split bool, proto string) *tls.Conn {
		t.Helper()
		raw, _ := dial(t, tl.addr)
		c := tls.Client(&headerFirst{Conn: raw, header: header, split: split}, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{proto}})
		if err := c.Handshake(); err != nil {
			t.Fatalf("handshake after a PROXY header: %v", err)
		}
		return c
	}
	cases := []struct {
		header string
		split  bool
		remote string
	}{
		{"PROXY TCP4 192.0.2.7 127.0.0.1 54321 443\r\n", false, "192.0.2.7"},
		{"PROXY TCP4 192.0.2.8 127.0.0.1 54321 443\r\n", true, "192.0.2.8"},
		{proxyV2, false, "198.51.100.9"},
		{proxyV2, true, "198.51.100.9"},
	}
	for _, tc := range cases {
		c := dialTLS(tc.header, tc.split, "http/1.1")
		if status, body, err := getOver(c, "/"); err != nil || status != 200 || body != "hi\n" {
			t.Errorf("after the header %q (split %v): %d %q %v", tc.header[:6], tc.split, status, body, err)
		}
	}
	al.Close()
	b, _ := os.ReadFile(logPath)
	for _, tc := range cases {
		if !strings.Contains(string(b), `"remote":"`+tc.remote+`"`) {
			t.Errorf("access log lacks %s:\n%s", tc.remote, b)
		}
	}

	// No header: the ClientHello is not one, and the connection closes.
	raw, _ := dial(t, tl.addr)
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	if err := c.Handshake(); err == nil {
		t.Error("a handshake without a PROXY header succeeded")
	}

	// A request the loop does not answer goes to net/http over the same
	// tls.Conn, with the header's client as its remote address.
	served := tl.Handoffs(nil)
	c = dialTLS("PROXY TCP4 203.0.113.5 127.0.0.1 4000 443\r\n", false, "http/1.1")
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	select {
	case nc := <-tl.host.adopted:
		defer nc.Close()
		if got, err := served.Accept(); err != nil || got != nc {
			t.Fatalf("Handoffs().Accept = %v, %v; want the adopted conn", got, err)
		}
		if got := nc.RemoteAddr().String(); got != "203.0.113.5:4000" {
			t.Errorf("handed over with remote %s", got)
		}
		req, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil || req.Method != "POST" {
			t.Errorf("net/http reads %v %v", req, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not handed over")
	}

	// An HTTP/2 connection goes to net/http right after its handshake,
	// with the header's client too.
	dialTLS("PROXY TCP6 2001:db8::1 ::1 5000 443\r\n", true, "h2")
	got, err := served.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if tc, ok := got.(*tls.Conn); !ok || tc.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("handed over %T, want an h2 *tls.Conn", got)
	}
	if r := got.RemoteAddr().String(); r != "[2001:db8::1]:5000" {
		t.Errorf("h2 handed over with remote %s", r)
	}
}
