package memtrim

import (
	"context"
	"testing"
	"time"
)

func TestWatchDue(t *testing.T) {
	const MiB = 1 << 20
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
			if got := w.due(sample{s.allocs, s.retained}); got != s.due {
				t.Errorf("%s: step %d: due %v, want %v", tc.name, i, got, s.due)
			}
		}
	}
}

func TestWatchOncePerBurst(t *testing.T) {
	const MiB = 1 << 20
	w := &watch{cfg: Config{Slack: MiB, Quiet: 100}}
	w.due(sample{0, 4 * MiB})
	w.due(sample{5000, 9 * MiB})
	if !w.due(sample{5000, 9 * MiB}) {
		t.Fatal("no trim after the burst")
	}
	// What the trim could not give back stays in use: no second trim.
	w.trimmed(sample{5000, 7 * MiB})
	for i := range 3 {
		if w.due(sample{5000, 7 * MiB}) {
			t.Fatalf("look %d after the trim: due again", i)
		}
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
		t.Logf("trim: %d KiB -> %d KiB in %v", r.Before>>10, r.After>>10, r.Took)
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after a 16 MiB burst was dropped")
	}
}
