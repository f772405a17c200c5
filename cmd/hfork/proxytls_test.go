package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig/testcert"
	"golang.org/x/net/http2"
)

// TestProxyProtocolTLS: an async TLS listener with proxy_protocol is
// served by the event loop, which takes the PROXY header off before the
// handshake: HTTP/1.1 and HTTP/2 clients behind it are named by the
// header in the access log, and a client without one gets no handshake.
func TestProxyProtocolTLS(t *testing.T) {
	port := mustFreePort(t)
	dir := t.TempDir()
	testcert.Write(t, dir, "site", testcert.Options{Names: []string{"127.0.0.1"}})
	m := startMasterIn(t, dir, "", fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "debug"
}
reload { watch = false }
listener "web" {
  bind           = "127.0.0.1:%d"
  class          = "async"
  workers        = 1
  proxy_protocol = true
  tls {
    cert = %q
    key  = %q
  }
  access_log {
    file   = "access.log"
    format = "json"
  }
  route "/" {
    respond { body = "ok" }
  }
}
`, port, filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")))
	m.waitLog(`"event_loop":true`, 1, 15*time.Second)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dial := func(header string) (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, header); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}

	raw, err := dial("PROXY TCP4 192.0.2.7 127.0.0.1 54321 443\r\n")
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	c.Close()
	if !strings.HasSuffix(string(b), "\r\n\r\nok") {
		t.Errorf("HTTP/1.1 after a PROXY header: %q %v", b, err)
	}

	tr := &http2.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialTLS: func(_, _ string, cfg *tls.Config) (net.Conn, error) {
			raw, err := dial("PROXY TCP4 198.51.100.9 127.0.0.1 12345 443\r\n")
			if err != nil {
				return nil, err
			}
			return tls.Client(raw, cfg), nil
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "ok" {
		t.Errorf("HTTP/2 after a PROXY header: %s %q", resp.Proto, body)
	}

	raw, err = dial("")
	if err != nil {
		t.Fatal(err)
	}
	c = tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	if err := c.Handshake(); err == nil {
		t.Error("a handshake without a PROXY header succeeded")
	}
	c.Close()

	m.signal(syscall.SIGUSR1) // reopen: the access log is flushed
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		if strings.Contains(string(b), `"remote":"192.0.2.7"`) && strings.Contains(string(b), `"remote":"198.51.100.9"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
