package worker

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// TestReqMetricsRoundTrip: what a worker counts is what the master parses.
func TestReqMetricsRoundTrip(t *testing.T) {
	l := hclconfig.Listener{Routes: []hclconfig.Route{{Prefix: "/"}, {Prefix: "/api/"}, {Prefix: "/api/v2/"}}}
	m := newReqMetrics(l)
	for _, c := range []struct {
		path string
		want int
	}{{"/api/v2/x", 2}, {"/api/x", 1}, {"/index.html", 0}} {
		if got := m.route(c.path); got != c.want {
			t.Errorf("route(%q) = %d, want %d", c.path, got, c.want)
		}
	}
	if got := newReqMetrics(hclconfig.Listener{Routes: []hclconfig.Route{{Prefix: "/a/"}}}).route("/b"); got != 1 {
		t.Errorf("no route: %d, want 1", got)
	}
	m.observe(m.route("/api/x"), 200, 3*time.Millisecond, 100)
	m.observe(m.route("/api/x"), 503, 20*time.Second, 10)
	m.observe(m.route("/"), 404, 0, 0)
	var b strings.Builder
	b.WriteString("WATCHDOG=1")
	m.appendFields(&b)
	c := map[string]string{}
	for line := range strings.SplitSeq(b.String(), "\n") {
		k, v, _ := strings.Cut(line, "=")
		c[k] = v
	}
	if c[NotifyCodes] != "0,0,0,1,0,0,1,0,0,1,0,0,0,0,0,0,0,0,0,0" {
		t.Errorf("codes %q", c[NotifyCodes])
	}
	if c[NotifyDuration] != "1,1,0,0,0,0,0,0,0,0,0,0,1,20003000" {
		t.Errorf("duration %q", c[NotifyDuration])
	}
	if c[NotifyBytes] != "110" {
		t.Errorf("bytes %q", c[NotifyBytes])
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
		return strings.Contains(m[NotifyNamed], "upgraded ") && strings.HasSuffix(m[NotifyNamed], " GET /ws")
	})
	if m[NotifyCodes] != "1,1,0,0,0,0,0,0,0,0" || m[NotifyBytes] != "5" {
		t.Errorf("codes %q bytes %q, want one 1xx and one 2xx on route / and 5 bytes", m[NotifyCodes], m[NotifyBytes])
	}
	if open, _, _ := strings.Cut(m[NotifyConns], ","); open == "0" {
		t.Errorf("conns %q: the stream is not counted", m[NotifyConns])
	}
	if !strings.HasSuffix(m[NotifyConns], ",1") {
		t.Errorf("conns %q, want one upgraded", m[NotifyConns])
	}
}
