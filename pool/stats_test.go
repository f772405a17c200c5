package pool

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

func TestWorkerStatsParse(t *testing.T) {
	var s workerStats
	s.parse(map[string]string{
		wire.KeyCodes:    "0,3,0,1,0,0,0,0,2,0",
		wire.KeyDuration: "4,0,0,0,0,0,0,0,0,0,0,0,1,2500000",
		wire.KeyBytes:    "120",
		wire.KeyConns:    "5,3,1",
	})
	c := s.counters([]Route{{Prefix: "/api/"}})
	if got := c.Codes[Route{Prefix: "/api/"}]; got != [5]uint64{0, 3, 0, 1, 0} {
		t.Errorf("/api/ codes %v", got)
	}
	if got := c.Codes[Route{}]; got != [5]uint64{0, 0, 0, 2, 0} {
		t.Errorf("unrouted codes %v", got)
	}
	if c.Requests() != 6 || c.Bytes != 120 || c.DurationSum != 2500*time.Millisecond || c.Buckets[0] != 4 || c.Buckets[12] != 1 {
		t.Errorf("counters %+v", c)
	}
	if s.open != 5 || s.idle != 3 || s.stream != 1 {
		t.Errorf("conns %d %d %d", s.open, s.idle, s.stream)
	}
	// A garbled field keeps the last good value: a counter never drops.
	s.parse(map[string]string{wire.KeyCodes: "1,x", wire.KeyBytes: "-1"})
	if c := s.counters([]Route{{Prefix: "/api/"}}); c.Requests() != 6 || c.Bytes != 120 {
		t.Errorf("after a bad datagram: %+v", c)
	}
}

// TestRouteKeysNameHostGroups: the groups of a worker's codes are named
// the listener's routes, its no route, then each host's routes and no
// route, so two hosts with the same prefix count apart.
func TestRouteKeysNameHostGroups(t *testing.T) {
	l := hclconfig.Listener{Routes: []hclconfig.Route{{Prefix: "/"}}, Hosts: []hclconfig.Host{
		{Label: "shop", Routes: []hclconfig.Route{{Prefix: "/api/"}, {Prefix: "/"}}},
		{Label: "blog", Routes: []hclconfig.Route{{Prefix: "/"}}},
	}}
	keys := routeKeys(l)
	want := []Route{{Prefix: "/"}, {}, {"shop", "/api/"}, {"shop", "/"}, {Host: "shop"}, {"blog", "/"}, {Host: "blog"}}
	if !slices.Equal(keys, want) {
		t.Fatalf("routeKeys = %v, want %v", keys, want)
	}
	var s workerStats
	groups := []string{"0,1,0,0,0", "0,0,0,0,0", "0,2,0,0,0", "0,3,0,0,0", "0,0,0,4,0", "0,5,0,0,0", "0,0,0,0,0"}
	s.parse(map[string]string{wire.KeyCodes: strings.Join(groups, ",")})
	c := s.counters(keys)
	for r, n := range map[Route][5]uint64{
		{Prefix: "/"}: {0, 1, 0, 0, 0}, {"shop", "/api/"}: {0, 2, 0, 0, 0}, {"shop", "/"}: {0, 3, 0, 0, 0},
		{Host: "shop"}: {0, 0, 0, 4, 0}, {"blog", "/"}: {0, 5, 0, 0, 0},
	} {
		if c.Codes[r] != n {
			t.Errorf("%+v: %v, want %v", r, c.Codes[r], n)
		}
	}
	if len(c.Codes) != 5 || c.Requests() != 15 {
		t.Errorf("codes %v", c.Codes)
	}
	// A worker of an older binary sends the listener's groups alone.
	s.parse(map[string]string{wire.KeyCodes: "0,6,0,0,0,0,0,0,1,0"})
	if c := s.counters(keys); c.Codes[Route{Prefix: "/"}] != [5]uint64{0, 6, 0, 0, 0} || c.Codes[Route{}] != [5]uint64{0, 0, 0, 1, 0} || len(c.Codes) != 2 {
		t.Errorf("an older worker's codes: %v", c.Codes)
	}
}

// TestSnapshotKeepsExitedWorkers: a worker's last report stays in the
// pool's totals after it exits, so the sum does not go backwards.
func TestSnapshotKeepsExitedWorkers(t *testing.T) {
	p := &Pool{cfg: Config{Listener: hclconfig.Listener{Name: "web", Routes: []hclconfig.Route{{Prefix: "/"}}}}}
	w := &Worker{Pid: 42, State: Ready, readyAt: time.Now().Add(-time.Minute)}
	p.workers = []*Worker{w}
	w.stats.parse(map[string]string{wire.KeyCodes: "0,7,0,0,1,0,0,0,0,0", wire.KeyBytes: "70"})
	before := p.Snapshot(time.Now()).Counters
	p.workers = nil
	p.exited(w, ExitEvent{Pid: 42}, time.Now(), Ready)
	s := p.Snapshot(time.Now())
	if s.Counters.Requests() != before.Requests() || s.Counters.Bytes != 70 || before.Requests() != 8 {
		t.Errorf("requests %d -> %d, bytes %d", before.Requests(), s.Counters.Requests(), s.Counters.Bytes)
	}
	if s.Restarts["exited"] != 1 || s.LastExit == nil || s.LastExit.Pid != 42 {
		t.Errorf("restarts %v last exit %+v", s.Restarts, s.LastExit)
	}
}
