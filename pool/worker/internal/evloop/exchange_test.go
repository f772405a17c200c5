package evloop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/upstream"
)

// backend answers every request on a connection with "ok", keeping it
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
					select { // a test that does not look at heads is not held up
					case heads <- req.Method + " " + req.RequestURI + " " + req.Host + "\n" + b.String():
					default:
					}
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
	// live first: a closed port is not handed out again while live holds
	// its own.
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
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

// TestExchangeTrustedProxies: the loop's side of trusted_proxies, with
// raw requests. An untrusted peer's forged X-Forwarded-For and
// X-Request-ID are dropped (the upstream and the access log see the peer,
// and a fresh ID); a trusted peer's are believed, and ip_hash follows the
// client they name.
func TestExchangeTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		trusted             string
		xff, id             string
		wantXFF, wantRemote string
		keepID              bool
	}{
		{"10.0.0.0/8", "198.51.100.7", "forged", "127.0.0.1", `"remote":"127.0.0.1"`, false},
		{"127.0.0.0/8", "6.6.6.6, 198.51.100.7", "from-lb", "6.6.6.6, 198.51.100.7", `"remote":"198.51.100.7"`, true},
	} {
		up, _, heads := backend(t)
		logPath := filepath.Join(t.TempDir(), "access.log")
		al, err := app.OpenAccessLog(hclconfig.AccessLog{File: logPath, Format: "json"})
		if err != nil {
			t.Fatal(err)
		}
		tl := startLoop(t, 4, func(c *Config) {
			c.Fast, c.Access, c.Trust = fakeFast{up: up}, al, app.NewTrust([]string{tc.trusted})
		})
		c, br := dial(t, tl.addr)
		fmt.Fprintf(c, "GET /up HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\nX-Request-ID: %s\r\n\r\n", tc.xff, tc.id)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
		head := <-heads
		id := ""
		for _, line := range strings.Split(head, "\r\n") {
			if v, ok := strings.CutPrefix(line, "X-Request-Id: "); ok {
				id = v
			}
		}
		if !strings.Contains(head, "X-Forwarded-For: "+tc.wantXFF+"\r\n") || (id == tc.id) != tc.keepID || (!tc.keepID && len(id) != 32) {
			t.Errorf("trusted %s: upstream got %q", tc.trusted, head)
		}
		al.Close()
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), tc.wantRemote) || !strings.Contains(string(b), `"request_id":"`+id+`"`) {
			t.Errorf("trusted %s: access log %s", tc.trusted, b)
		}
	}
}

// TestExchangeIPHashTrusted: ip_hash picks by the client a trusted peer
// names, so one client always reaches one upstream, and many reach both.
func TestExchangeIPHashTrusted(t *testing.T) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveBackend(t, a, "a")
	serveBackend(t, b, "b")
	up := proxyTo(t, hclconfig.Proxy{Upstream: []string{"http://" + a.Addr().String(), "http://" + b.Addr().String()}, Policy: hclconfig.PolicyIPHash})
	tl := startLoop(t, 4, func(c *Config) { c.Fast, c.Trust = fakeFast{up: up}, app.NewTrust([]string{"127.0.0.1"}) })
	c, br := dial(t, tl.addr)
	seen := map[string]bool{}
	for i := range 20 {
		var got []string
		for range 3 {
			fmt.Fprintf(c, "GET /up HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.%d\r\n\r\n", i)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			got = append(got, string(body))
		}
		if got[0] != got[1] || got[1] != got[2] {
			t.Errorf("client %d went to %v", i, got)
		}
		seen[got[0]] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("20 clients reached only %v", seen)
	}
}

// TestExchangeHostnameUpstream: a host-name upstream is served by the
// loop itself, at each address the name resolves to (an address where
// nothing listens, like ::1 here, is retried elsewhere), with the name
// as Host.
func TestExchangeHostnameUpstream(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, heads := serveBackend(t, ln, "named")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	up := proxyTo(t, hclconfig.Proxy{Upstream: []string{"http://localhost:" + port}, Retries: 1, MaxFails: 1})
	tl := startLoop(t, 4, func(c *Config) { c.Fast = fakeFast{up: up} })
	c, br := dial(t, tl.addr)
	for i := range 4 {
		if resp, body := get(t, c, br, "/up"); resp.StatusCode != 200 || body != "named" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if head := <-heads; !strings.HasPrefix(head, "GET /up localhost:"+port+"\n") {
			t.Errorf("upstream got %q", head)
		}
	}
	if n := len(tl.host.adopted); n != 0 {
		t.Errorf("%d connections handed to net/http", n)
	}
}
