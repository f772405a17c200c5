package upstream

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

func newGroup(t *testing.T, cfg hclconfig.Proxy) (*Group, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	g, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, &logs
}

var three = []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "unix:/run/three.sock"}

func picks(g *Group, client string, n int) string {
	var s []string
	for range n {
		m := g.Pick(client, nil)
		if m == nil {
			s = append(s, "-")
			continue
		}
		s = append(s, m.Name)
	}
	return strings.Join(s, " ")
}

func TestPickPolicies(t *testing.T) {
	rr, _ := newGroup(t, hclconfig.Proxy{Upstream: three})
	if got, want := picks(rr, "", 4), "127.0.0.1:1 127.0.0.1:2 unix:/run/three.sock 127.0.0.1:1"; got != want {
		t.Errorf("round_robin: %s, want %s", got, want)
	}
	first, _ := newGroup(t, hclconfig.Proxy{Upstream: three, Policy: hclconfig.PolicyFirst})
	if got, want := picks(first, "", 3), "127.0.0.1:1 127.0.0.1:1 127.0.0.1:1"; got != want {
		t.Errorf("first: %s, want %s", got, want)
	}
	ih, _ := newGroup(t, hclconfig.Proxy{Upstream: three, Policy: hclconfig.PolicyIPHash})
	seen := map[string]bool{}
	for i := range 50 {
		ip := fmt.Sprintf("10.0.0.%d", i)
		p := picks(ih, ip, 3)
		if one := strings.Fields(p)[0]; p != one+" "+one+" "+one {
			t.Errorf("ip_hash: %s got %s", ip, p)
		}
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Errorf("ip_hash: 50 clients all went to one upstream")
	}
	lc, _ := newGroup(t, hclconfig.Proxy{Upstream: three, Policy: hclconfig.PolicyLeastConn})
	ms := lc.Members()
	ms[0].Begin()
	ms[2].Begin()
	for range 3 {
		if m := lc.Pick("", nil); m != ms[1] {
			t.Errorf("least_conn picked %s, want the idle %s", m.Name, ms[1].Name)
		}
	}
	ms[0].End()
	ms[1].Begin()
	ms[1].Begin()
	if m := lc.Pick("", nil); m != ms[0] {
		t.Errorf("least_conn picked %s, want %s", m.Name, ms[0].Name)
	}
}

func TestPickSkipsTried(t *testing.T) {
	g, _ := newGroup(t, hclconfig.Proxy{Upstream: three, Policy: hclconfig.PolicyFirst})
	ms := g.Members()
	if m := g.Pick("", ms[:1]); m != ms[1] {
		t.Errorf("after the first: %v", m)
	}
	if m := g.Pick("", ms); m != nil {
		t.Errorf("all tried: %v, want nil", m.Name)
	}
}

// TestPassiveHealth: max_fails failures within fail_timeout mark an
// upstream down for fail_timeout, once, and it comes back after.
func TestPassiveHealth(t *testing.T) {
	g, logs := newGroup(t, hclconfig.Proxy{Upstream: three[:2], Policy: hclconfig.PolicyFirst, MaxFails: 2, FailTimeout: time.Minute})
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	a, b := g.Members()[0], g.Members()[1]
	g.Failed(a, "refused")
	if g.Pick("", nil) != a {
		t.Fatal("one failure of two marked it down")
	}
	now = now.Add(2 * time.Minute) // the window passed: the count starts again
	g.Failed(a, "refused")
	if g.Pick("", nil) != a {
		t.Fatal("failures in two windows marked it down")
	}
	g.Failed(a, "refused")
	if g.Pick("", nil) != b {
		t.Fatal("two failures in one window did not mark it down")
	}
	g.Failed(b, "refused")
	g.Failed(b, "refused")
	if m := g.Pick("", nil); m != nil {
		t.Fatalf("all down: picked %s, want nil (a 503)", m.Name)
	}
	now = now.Add(time.Minute)
	if g.Pick("", nil) != a || g.Pick("", []*Member{a}) != b {
		t.Fatal("not back after fail_timeout")
	}
	out := logs.String()
	if strings.Count(out, "upstream unhealthy") != 2 || strings.Count(out, "upstream healthy") != 2 ||
		!strings.Contains(out, "upstream=127.0.0.1:1 reason=refused") {
		t.Errorf("health log:\n%s", out)
	}
}

// TestSingleUpstreamNeverMarked: with nowhere else to go, failures do not
// turn every request into a 503.
func TestSingleUpstreamNeverMarked(t *testing.T) {
	g, _ := newGroup(t, hclconfig.Proxy{Upstream: three[:1], MaxFails: 1})
	g.Failed(g.Members()[0], "refused")
	if g.Pick("", nil) == nil {
		t.Error("the only upstream was marked down")
	}
}
