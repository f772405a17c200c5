package evloop

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/upstream"
)

// upstream answers every request on a connection with "ok", keeping it
// open, and reports each request's head.
func backend(t *testing.T) (*app.FastProxy, *atomic.Int64, chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns, heads := serveBackend(t, ln, "ok")
	return proxyTo(t, hclconfig.Proxy{Upstream: []string{"http://" + ln.Addr().String()}}), conns, heads
}

// serveBackend answers every request on ln with body.
func serveBackend(t *testing.T, ln net.Listener, body string) (*atomic.Int64, chan string) {
	t.Helper()
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
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				}
			}()
		}
	}()
	return &conns, heads
}

// proxyTo is a proxy route to cfg's upstreams.
func proxyTo(t *testing.T, cfg hclconfig.Proxy) *app.FastProxy {
	t.Helper()
	g, err := upstream.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	t.Cleanup(g.Close)
	return &app.FastProxy{Group: g}
}

// TestExchangePooled: requests go to the upstream with the proxy's
// headers, over one pooled connection, and each is counted.
func TestExchangePooled(t *testing.T) {
	up, conns, heads := backend(t)
	tl := startLoop(t, 4, func(c *Config) { c.Fast = fakeFast{up: up} })
	c, br := dial(t, tl.addr)
	for i := 0; i < 3; i++ {
		resp, body := get(t, c, br, "/up")
		if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("Date") == "" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		head := <-heads
		for _, want := range []string{"GET /up " + up.Group.Members()[0].Host + "\n", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Host: x", "X-Forwarded-Proto: http"} {
			if !strings.Contains(head, want) {
				t.Errorf("upstream got %q, want %q in it", head, want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream connections = %d, want 1 (pooled)", n)
	}
	if n := tl.host.served.Load(); n != 3 {
		t.Errorf("served = %d, want 3", n)
	}
}

// TestExchangeUpstreamDown: a refused dial is a 502, and the client's
// connection goes on.
func TestExchangeUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	up := proxyTo(t, hclconfig.Proxy{Upstream: []string{"http://" + ln.Addr().String()}})
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

// TestExchangeUnixUpstream: a unix-socket upstream is served by the loop
// itself (nothing handed to net/http), with Host "localhost", pooled.
func TestExchangeUnixUpstream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	conns, heads := serveBackend(t, ln, "unix")
	up := proxyTo(t, hclconfig.Proxy{Upstream: []string{"unix:" + path}})
	tl := startLoop(t, 4, func(c *Config) { c.Fast = fakeFast{up: up} })
	c, br := dial(t, tl.addr)
	for i := range 3 {
		if resp, body := get(t, c, br, "/up"); resp.StatusCode != 200 || body != "unix" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if head := <-heads; !strings.HasPrefix(head, "GET /up localhost\n") || !strings.Contains(head, "X-Forwarded-For: 127.0.0.1") {
			t.Errorf("upstream got %q", head)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream connections = %d, want 1 (pooled)", n)
	}
	if n := len(tl.host.adopted); n != 0 {
		t.Errorf("%d connections handed to net/http", n)
	}
}

// TestExchangeRetryThen503: a refused upstream costs the request nothing
// (it goes to the other one) and is marked down; with every upstream down
// the answer is a 503.
func TestExchangeRetryThen503(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveBackend(t, live, "live")
	up := proxyTo(t, hclconfig.Proxy{Upstream: []string{"http://" + dead.Addr().String(), "http://" + live.Addr().String()},
		Policy: hclconfig.PolicyFirst, Retries: 1, MaxFails: 1})
	tl := startLoop(t, 4, func(c *Config) { c.Fast = fakeFast{up: up} })
	c, br := dial(t, tl.addr)
	for i := range 3 {
		if resp, body := get(t, c, br, "/up"); resp.StatusCode != 200 || body != "live" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	tl.log.waitLog(t, "upstream failed; trying another")
	if g := up.Group; g.Healthy(g.Members()[0]) {
		t.Error("the refusing upstream is not marked down")
	}
	if n := strings.Count(tl.log.String(), "trying another"); n != 1 {
		t.Errorf("%d retries, want 1 (then the dead one is out)", n)
	}

	// Two that refuse: the first request tries both (502), which marks
	// both, and the next finds none healthy.
	dead2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead2.Close()
	none := proxyTo(t, hclconfig.Proxy{Upstream: []string{"http://" + dead.Addr().String(), "http://" + dead2.Addr().String()},
		Retries: 1, MaxFails: 1})
	tl2 := startLoop(t, 4, func(c *Config) { c.Fast = fakeFast{up: none} })
	c2, br2 := dial(t, tl2.addr)
	if resp, _ := get(t, c2, br2, "/up"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if resp, body := get(t, c2, br2, "/up"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d %q, want 503", resp.StatusCode, body)
	}
}
