package memtrim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

const MiB = 1 << 20

func TestWatchDue(t *testing.T) {
	cfg := Config{Slack: MiB, Quiet: 100}
	type step struct {
		allocs, retained uint64
		due              bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first look only sets the floor", []step{{0, 9 * MiB, false}}},
		{"a burst that passed", []step{{0, 4 * MiB, false}, {5000, 8 * MiB, false}, {5050, 8 * MiB, true}}},
		{"still growing", []step{{0, 4 * MiB, false}, {5000, 7 * MiB, false}, {5050, 8 * MiB, false}}},
		{"still allocating", []step{{0, 4 * MiB, false}, {5000, 8 * MiB, false}, {9000, 8 * MiB, false}}},
		{"within the slack", []step{{0, 4 * MiB, false}, {5000, 4*MiB + MiB/2, false}, {5000, 4*MiB + MiB/2, false}}},
		{"the floor follows memory down", []step{{0, 8 * MiB, false}, {0, 4 * MiB, false}, {5000, 6 * MiB, false}, {5000, 6 * MiB, true}}},
	} {
		w := &watch{cfg: cfg}
		for i, s := range tc.steps {
			if got, fell := w.due(sample{allocs: s.allocs, retained: s.retained}); got != s.due || fell != 0 {
				t.Errorf("%s: step %d: due %v (fell from %d), want %v", tc.name, i, got, fell, s.due)
			}
		}
	}
}

func TestWatchOncePerBurst(t *testing.T) {
	w := &watch{cfg: Config{Slack: MiB, Quiet: 100}}
	w.due(sample{allocs: 0, retained: 4 * MiB})
	w.due(sample{allocs: 5000, retained: 9 * MiB})
	if due, _ := w.due(sample{allocs: 5000, retained: 9 * MiB}); !due {
		t.Fatal("no trim after the burst")
	}
	// What the trim could not give back stays in use: no second trim.
	w.trimmed(sample{allocs: 5000, retained: 7 * MiB})
	for i := range 3 {
		if due, _ := w.due(sample{allocs: 5000, retained: 7 * MiB}); due {
			t.Fatalf("look %d after the trim: due again", i)
		}
	}
}

// A crowd's connections closing trims at the first look that finds them
// no longer closing, while allocation is not quiet yet, and within the
// slack too; fewer connections or a smaller fall do not.
func TestWatchDueWhenConnectionsClose(t *testing.T) {
	cfg := Config{Slack: MiB, Quiet: 100, Crowd: 64}
	type step struct {
		allocs, retained uint64
		open             int64
		due              bool
		fellFrom         int64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a crowd closed", []step{{0, 4 * MiB, 0, false, 0}, {5000, 30 * MiB, 500, false, 0}, {9000, 30 * MiB, 0, true, 500}}},
		// The rest may be closing: the trim waits for a look that
		// finds no more closed.
		{"a quarter left", []step{{0, 4 * MiB, 0, false, 0}, {5000, 30 * MiB, 400, false, 0}, {9000, 30 * MiB, 100, false, 0}, {9500, 30 * MiB, 100, true, 400}}},
		{"still closing", []step{{0, 4 * MiB, 0, false, 0}, {5000, 30 * MiB, 400, false, 0}, {9000, 30 * MiB, 100, false, 0}, {9500, 30 * MiB, 36, false, 0}, {9600, 30 * MiB, 0, true, 400}}},
		{"more than a quarter left", []step{{0, 4 * MiB, 0, false, 0}, {5000, 30 * MiB, 400, false, 0}, {9000, 30 * MiB, 101, false, 0}, {13000, 30 * MiB, 101, false, 0}}},
		{"the peak is the most seen", []step{{0, 4 * MiB, 0, false, 0}, {5000, 30 * MiB, 800, false, 0}, {9000, 30 * MiB, 300, false, 0}, {13000, 30 * MiB, 200, false, 0}, {17000, 30 * MiB, 200, true, 800}}},
		{"not a crowd", []step{{0, 4 * MiB, 0, false, 0}, {5000, 30 * MiB, 63, false, 0}, {9000, 30 * MiB, 0, false, 0}}},
		// A burst passed: the trim is for what follows it too.
		{"within the slack", []step{{0, 4 * MiB, 0, false, 0}, {5000, 4 * MiB, 500, false, 0}, {9000, 4 * MiB, 0, true, 500}}},
	} {
		w := &watch{cfg: cfg}
		for i, s := range tc.steps {
			due, fell := w.due(sample{allocs: s.allocs, retained: s.retained, open: s.open})
			if due != s.due || fell != s.fellFrom {
				t.Errorf("%s: step %d: due %v fell from %d, want %v from %d", tc.name, i, due, fell, s.due, s.fellFrom)
			}
		}
	}
	// Once trimmed, the connections left are the new mark.
	w := &watch{cfg: cfg}
	w.due(sample{retained: 4 * MiB})
	w.due(sample{allocs: 5000, retained: 30 * MiB, open: 500})
	w.due(sample{allocs: 9000, retained: 30 * MiB, open: 100})
	if due, _ := w.due(sample{allocs: 9000, retained: 30 * MiB, open: 100}); !due {
		t.Fatal("no trim when 400 of 500 connections closed")
	}
	w.trimmed(sample{allocs: 9000, retained: 8 * MiB, open: 100})
	if due, fell := w.due(sample{allocs: 9500, retained: 8 * MiB, open: 30}); due {
		t.Fatalf("trim again when 70 of the 100 left closed (fell from %d)", fell)
	}
}

// Quiet and growth are judged over an Interval: looks in between (Busy
// ones) take only a fall of the connections.
func TestWatchQuietOverAnInterval(t *testing.T) {
	at := time.Unix(1000, 0)
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	w := &watch{cfg: Config{Interval: time.Second, Slack: MiB, Quiet: 1000, Crowd: 64, Busy: 100 * time.Millisecond}}
	w.due(sample{retained: 4 * MiB, at: ms(0)})
	w.due(sample{allocs: 50000, retained: 9 * MiB, open: 500, at: ms(1000)})
	// 100 ms that allocated nothing, a crowd open: not a quiet second.
	for i, n := range []int{1100, 1200, 1900} {
		if due, _ := w.due(sample{allocs: 50000 + uint64(i), retained: 9 * MiB, open: 500, at: ms(n)}); due {
			t.Fatalf("a %d ms look trimmed", n-1000)
		}
	}
	// A second after the mark: 1002 bytes in it, not quiet.
	if due, _ := w.due(sample{allocs: 51002, retained: 9 * MiB, open: 500, at: ms(2000)}); due {
		t.Fatal("trimmed after a second that allocated more than Quiet")
	}
	if due, _ := w.due(sample{allocs: 52000, retained: 9 * MiB, open: 500, at: ms(3000)}); !due {
		t.Fatal("no trim after a quiet second")
	}
}

// Looks come every Busy while a crowd is open and allocating or its
// connections close, every Interval otherwise (a crowd of idle
// connections included).
func TestWatchInterval(t *testing.T) {
	cfg := Config{Interval: time.Second, Slack: MiB, Quiet: 100, Crowd: 64, Busy: 100 * time.Millisecond}
	w := &watch{cfg: cfg}
	w.due(sample{retained: 4 * MiB})
	if got := w.interval(); got != time.Second {
		t.Errorf("idle: %v", got)
	}
	w.due(sample{allocs: 5000, retained: 8 * MiB, open: 64})
	if got := w.interval(); got != 100*time.Millisecond {
		t.Errorf("a crowd served: %v", got)
	}
	w.due(sample{allocs: 5000, retained: 8 * MiB, open: 64})
	if got := w.interval(); got != time.Second {
		t.Errorf("a crowd idle: %v", got)
	}
	w.due(sample{allocs: 9000, retained: 8 * MiB, open: 40})
	if got := w.interval(); got != 100*time.Millisecond {
		t.Errorf("a crowd's connections closing: %v", got)
	}
	w.due(sample{allocs: 13000, retained: 8 * MiB, open: 40})
	if got := w.interval(); got != time.Second {
		t.Errorf("fewer than a crowd, allocating: %v", got)
	}
	w.cfg.Busy = 0
	w.due(sample{allocs: 19000, retained: 8 * MiB, open: 500})
	if got := w.interval(); got != time.Second {
		t.Errorf("without Busy: %v", got)
	}
}

// sink keeps the burst's allocations from being optimised away.
var sink [][]byte

// A burst of allocation that is then dropped is given back to the OS.
func TestRunTrimsAfterABurst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan Result, 4)
	started := make(chan struct{})
	go run(ctx, Config{Interval: 20 * time.Millisecond, Slack: 4 << 20, Quiet: 1 << 20}, started, func(r Result) { results <- r })
	<-started
	for range 256 {
		sink = append(sink, make([]byte, 64<<10)) // 16 MiB
	}
	sink = nil
	select {
	case r := <-results:
		if r.After >= r.Before {
			t.Fatalf("trim kept %d bytes of %d: nothing given back", r.After, r.Before)
		}
		if r.FellFrom != 0 {
			t.Errorf("a quiet trim reported a fall from %d connections", r.FellFrom)
		}
		t.Logf("trim: %d KiB -> %d KiB in %v", r.Before>>10, r.After>>10, r.Took)
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after a 16 MiB burst was dropped")
	}
}

// A crowd's connections closing trims at the next Busy look, long
// before a quiet Interval.
func TestRunTrimsWhenConnectionsClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var open atomic.Int64
	open.Store(100)
	results := make(chan Result, 4)
	started := make(chan struct{})
	cfg := Config{Interval: time.Hour, Slack: 4 << 20, Quiet: 1 << 20, Crowd: 64, Busy: 5 * time.Millisecond, Open: open.Load}
	go run(ctx, cfg, started, func(r Result) { results <- r })
	<-started
	for range 256 {
		sink = append(sink, make([]byte, 64<<10)) // 16 MiB the connections held
	}
	sink = nil
	open.Store(0)
	select {
	case r := <-results:
		if r.FellFrom != 100 || r.Open != 0 {
			t.Errorf("trim for connections falling from %d to %d, want 100 to 0", r.FellFrom, r.Open)
		}
		if r.After >= r.Before || r.HeapAfter >= r.HeapBefore {
			t.Errorf("trim kept %d of %d bytes retained, %d of %d bytes of heap", r.After, r.Before, r.HeapAfter, r.HeapBefore)
		}
		t.Logf("trim: %d KiB -> %d KiB retained, heap %d KiB -> %d KiB, goal %d KiB, in %v", r.Before>>10, r.After>>10, r.HeapBefore>>10, r.HeapAfter>>10, r.Goal>>10, r.Took)
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after the connections closed")
	}
}
