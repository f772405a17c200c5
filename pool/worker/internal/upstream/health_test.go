package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// TestHealthCheck: probes over real sockets mark an upstream whose probe
// fails (status, or nothing listening) unhealthy, and healthy again when
// it passes; each change is logged once.
func TestHealthCheck(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	probed := make(chan string, 64)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probed <- r.URL.Path + " " + r.Host
		w.WriteHeader(int(status.Load()))
	}))
	defer up.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	hc := hclconfig.HealthCheck{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second, Status: []int{200}}
	g, logs := newGroup(t, hclconfig.Proxy{Upstream: []string{up.URL, "http://" + deadAddr}, HealthCheck: hc})
	live, gone := g.Members()[0], g.Members()[1]
	g.Start()
	if p := <-probed; p != "/healthz "+strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("probe %q", p)
	}
	waitFor(t, func() bool { return !g.Healthy(gone) })
	for range 5 {
		if m := g.Pick("", nil); m != live {
			t.Fatalf("picked %v with the other one down", m.Name)
		}
	}
	status.Store(503)
	waitFor(t, func() bool { return !g.Healthy(live) })
	if m := g.Pick("", nil); m != nil {
		t.Fatalf("none healthy: picked %s", m.Name)
	}
	status.Store(200)
	waitFor(t, func() bool { return g.Healthy(live) })
	g.Close()
	out := logs.String()
	for _, want := range []string{
		"upstream unhealthy\" upstream=" + deadAddr + " reason=\"health check: dial",
		"upstream unhealthy\" upstream=" + live.Name + " reason=\"health check: status 503",
		"upstream healthy\" upstream=" + live.Name + " reason=\"health check passed\"",
	} {
		if strings.Count(out, want) != 1 {
			t.Errorf("want once %q in\n%s", want, out)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
