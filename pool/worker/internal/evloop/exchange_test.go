package evloop

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hfork/hfork/pool/worker/app"
)

// upstream answers every request on a connection with "ok", keeping it
// open, and reports each request's head.
func upstream(t *testing.T) (*app.FastUpstream, *atomic.Int64, chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	heads := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					var b strings.Builder
					req.Header.Write(&b)
					heads <- req.Method + " " + req.RequestURI + " " + req.Host + "\n" + b.String()
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return &app.FastUpstream{ID: 0, IP: a.IP, Port: a.Port, Host: "backend"}, &conns, heads
}

// TestExchangePooled: requests go to the upstream with the proxy's
// headers, over one pooled connection, and each is counted.
func TestExchangePooled(t *testing.T) {
	up, conns, heads := upstream(t)
	tl := startLoop(t, 4, func(c *Config) { c.Fast = fakeFast{up: up} })
	c, br := dial(t, tl.addr)
	for i := 0; i < 3; i++ {
		resp, body := get(t, c, br, "/up")
		if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("Date") == "" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		head := <-heads
		for _, want := range []string{"GET /up backend\n", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Host: x", "X-Forwarded-Proto: http"} {
			if !strings.Contains(head, want) {
				t.Errorf("upstream got %q, want %q in it", head, want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream connections = %d, want 1 (pooled)", n)
	}
	if n, st := tl.host.served.Load(), tl.host.status.Load(); n != 3 || st != 200 {
		t.Errorf("served = %d (last status %d), want 3 (200)", n, st)
	}
}

// TestExchangeUpstreamDown: a refused dial is a 502, and the client's
// connection goes on.
func TestExchangeUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr)
	ln.Close()
	up := &app.FastUpstream{IP: a.IP, Port: a.Port, Host: "gone"}
	tl := startLoop(t, 4, func(c *Config) { c.Fast = fakeFast{up: up} })
	c, br := dial(t, tl.addr)
	if resp, _ := get(t, c, br, "/up"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if resp, body := get(t, c, br, "/"); resp.StatusCode != 200 || body != "hi\n" {
		t.Errorf("after the 502: %d %q", resp.StatusCode, body)
	}
	tl.log.waitLog(t, "upstream failed")
}
