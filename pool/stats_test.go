package pool

import (
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
	c := s.counters([]string{"/api/"})
	if got := c.Codes["/api/"]; got != [5]uint64{0, 3, 0, 1, 0} {
		t.Errorf("/api/ codes %v", got)
	}
	if got := c.Codes[""]; got != [5]uint64{0, 0, 0, 2, 0} {
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
	if c := s.counters([]string{"/api/"}); c.Requests() != 6 || c.Bytes != 120 {
		t.Errorf("after a bad datagram: %+v", c)
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
