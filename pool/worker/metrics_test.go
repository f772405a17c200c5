package worker

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// TestReqMetricsRoundTrip: what a worker counts is what the master parses.
func TestReqMetricsRoundTrip(t *testing.T) {
	l := hclconfig.Listener{Routes: []hclconfig.Route{{Prefix: "/"}, {Prefix: "/api/"}, {Prefix: "/api/v2/"}}}
	m := newReqMetrics(l)
	for _, c := range []struct {
		path string
		want int
	}{{"/api/v2/x", 2}, {"/api/x", 1}, {"/index.html", 0}} {
		if got := m.route("", c.path); got != c.want {
			t.Errorf("route(%q) = %d, want %d", c.path, got, c.want)
		}
	}
	if got := newReqMetrics(hclconfig.Listener{Routes: []hclconfig.Route{{Prefix: "/a/"}}}).route("", "/b"); got != 1 {
		t.Errorf("no route: %d, want 1", got)
	}
	m.observe(m.route("", "/api/x"), 200, 3*time.Millisecond, 100)
	m.observe(m.route("", "/api/x"), 503, 20*time.Second, 10)
	m.observe(m.route("", "/"), 404, 0, 0)
	var b strings.Builder
	b.WriteString("WATCHDOG=1")
	m.appendFields(&b)
	c := map[string]string{}
	for line := range strings.SplitSeq(b.String(), "\n") {
		k, v, _ := strings.Cut(line, "=")
		c[k] = v
	}
	if c[wire.KeyCodes] != "0,0,0,1,0,0,1,0,0,1,0,0,0,0,0,0,0,0,0,0" {
		t.Errorf("codes %q", c[wire.KeyCodes])
	}
	if c[wire.KeyDuration] != "1,1,0,0,0,0,0,0,0,0,0,0,1,20003000" {
		t.Errorf("duration %q", c[wire.KeyDuration])
	}
	if c[wire.KeyBytes] != "110" {
		t.Errorf("bytes %q", c[wire.KeyBytes])
	}
}

// TestReqMetricsHosts: a request is counted under the routes of the host
// its Host header picks, two hosts with the same prefix apart, and a
// swap keeps a host's route in its slot while its label and prefix stay.
func TestReqMetricsHosts(t *testing.T) {
	host := func(label, name string, prefixes ...string) hclconfig.Host {
		h := hclconfig.Host{Label: label, Names: []string{name}}
		for _, p := range prefixes {
			h.Routes = append(h.Routes, hclconfig.Route{Prefix: p})
		}
		return h
	}
	l := hclconfig.Listener{Routes: []hclconfig.Route{{Prefix: "/"}},
		Hosts: []hclconfig.Host{host("shop", "shop.test", "/api/", "/"), host("blog", "*.blog.test", "/")}}
	m := newReqMetrics(l)
	// Wire order: / none | shop /api/ / none | blog / none.
	for _, c := range []struct {
		host, path string
		want       int
	}{
		{"", "/x", 0}, {"other.test", "/x", 0},
		{"shop.test", "/api/x", 2}, {"SHOP.test:8080", "/x", 3},
		{"a.blog.test", "/x", 5}, {"blog.test", "/x", 0},
	} {
		if got := m.route(c.host, c.path); got != c.want {
			t.Errorf("route(%q, %q) = %d, want %d", c.host, c.path, got, c.want)
		}
	}
	if got := newReqMetrics(hclconfig.Listener{Hosts: []hclconfig.Host{host("shop", "shop.test", "/api/")}}).route("shop.test", "/x"); got != 2 {
		t.Errorf("shop's no route: %d, want 2", got)
	}
	m.observe(m.route("shop.test", "/"), 200, 0, 0)
	m.observe(m.route("a.blog.test", "/"), 200, 0, 0)
	m.observe(m.route("a.blog.test", "/"), 200, 0, 0)
	codes := func() string {
		var b strings.Builder
		m.appendFields(&b)
		_, v, _ := strings.Cut(strings.Split(b.String(), "\n")[1], "=")
		return v
	}
	if got := codes(); got != "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0" {
		t.Errorf("codes %q", got)
	}
	// blog goes first and loses nothing; shop's "/api/" is gone.
	l.Hosts = []hclconfig.Host{host("blog", "*.blog.test", "/"), host("shop", "shop.test", "/")}
	m.setRoutes(l)
	if got := codes(); got != "0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0" {
		t.Errorf("codes after the swap %q", got)
	}
	if got, want := m.route("shop.test", "/api/"), m.route("shop.test", "/"); got != want {
		t.Errorf("after the swap shop's /api/ counts in %d, want its / (%d)", got, want)
	}
}

// TestHeartbeatNamesStreamsAndCounts: an upgraded connection is named on
// the heartbeat with the request that upgraded it, and counted as one 1xx
// answer; served requests show in the codes, bytes and connections.
func TestHeartbeatNamesStreamsAndCounts(t *testing.T) {
	l := testListener(hclconfig.ClassThread)
	l.Routes = []hclconfig.Route{{Prefix: "/"}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			io.WriteString(w, "hello")
			return
		}
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		bw.Flush()
		io.Copy(io.Discard, conn) // until the client closes
	})
	tw := startWorker(t, l, h, nil, nil)
	if resp, err := http.Get("http://" + tw.addr + "/hello"); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	c, br := dialRaw(t, tw.addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	m := tw.sink.waitFor(t, "the stream named", func(m map[string]string) bool {
		return strings.Contains(m[wire.KeyNamed], "upgraded ") && strings.HasSuffix(m[wire.KeyNamed], " GET /ws")
	})
	if m[wire.KeyCodes] != "1,1,0,0,0,0,0,0,0,0" || m[wire.KeyBytes] != "5" {
		t.Errorf("codes %q bytes %q, want one 1xx and one 2xx on route / and 5 bytes", m[wire.KeyCodes], m[wire.KeyBytes])
	}
	if open, _, _ := strings.Cut(m[wire.KeyConns], ","); open == "0" {
		t.Errorf("conns %q: the stream is not counted", m[wire.KeyConns])
	}
	if !strings.HasSuffix(m[wire.KeyConns], ",1") {
		t.Errorf("conns %q, want one upgraded", m[wire.KeyConns])
	}
}
