package worker

import (
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
