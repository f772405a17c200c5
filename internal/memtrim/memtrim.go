package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config says how often to look and what counts as a burst that passed.
type Config struct {
	Interval time.Duration // between two looks
	// Slack is how far above its floor the retained memory must be.
	Slack uint64
	// Quiet is the most bytes allocated in one Interval that count as
	// quiet: no burst is being served.
	Quiet uint64
}

// Defaults suit a worker: a look a second, a trim for 1 MiB or more
// kept beyond the floor once less than 256 KiB was allocated in a second.
var Defaults = Config{Interval: time.Second, Slack: 1 << 20, Quiet: 256 << 10}

// Result is one trim.
type Result struct {
	Before, After uint64        // retained bytes around the trim
	Took          time.Duration // the collection and the return to the OS
}

// sample is one look at the runtime: bytes allocated in all, and bytes
// retained (mapped memory not given back).
type sample struct{ allocs, retained uint64 }

var names = []string{"/gc/heap/allocs:bytes", "/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

func read(s []metrics.Sample) sample {
	metrics.Read(s)
	return sample{allocs: s[0].Value.Uint64(), retained: s[1].Value.Uint64() - s[2].Value.Uint64()}
}

// watch decides from the samples when a trim is due.
type watch struct {
	cfg   Config
	floor uint64
	last  sample
	seen  bool
}

// due takes the next sample and reports whether to trim now.
func (w *watch) due(s sample) bool {
	if !w.seen {
		w.seen, w.floor, w.last = true, s.retained, s
		return false
	}
	prev := w.last
	w.last = s
	w.floor = min(w.floor, s.retained)
	return s.retained >= w.floor+w.cfg.Slack && s.retained <= prev.retained && s.allocs-prev.allocs <= w.cfg.Quiet
}

// trimmed moves the floor to what a trim left.
func (w *watch) trimmed(s sample) {
	w.floor, w.last = s.retained, s
}

// Run looks every cfg.Interval until ctx ends, trims when a burst has
// passed, and calls done (if not nil) after each trim.
func Run(ctx context.Context, cfg Config, done func(Result)) { run(ctx, cfg, nil, done) }

// run is Run, closing ready (if not nil) once it took its first look.
func run(ctx context.Context, cfg Config, ready chan<- struct{}, done func(Result)) {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	w := &watch{cfg: cfg}
	w.due(read(s))
	if ready != nil {
		close(ready)
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read(s)
		if !w.due(now) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		after := read(s)
		w.trimmed(after)
		if done != nil {
			done(Result{Before: now.retained, After: after.retained, Took: time.Since(start)})
		}
	}
}
