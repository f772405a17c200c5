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
	// Slack is how far above its floor the retained memory must be for a
	// quiet Interval to trim.
	Slack uint64
	// Quiet is the most bytes allocated in one Interval that count as
	// quiet: no burst is being served.
	Quiet uint64
	// Open, if set, counts the process's open connections. A burst's
	// connections closing is then a burst that passed, seen at once: the
	// trim need not wait for a quiet Interval, in which the heap they
	// left would stay resident.
	Open func() int64
	// Crowd is the fewest open connections whose closing trims, Slack or
	// not: when at least Crowd were open since the last trim, a quarter
	// of the most or fewer are left, and no more closed since the last
	// look (or none is left).
	Crowd int64
	// Busy is the interval between looks while Crowd or more are open and
	// allocation is not quiet, so that their end is seen within it. The
	// process is serving them then: a look (a count and the runtime's
	// counters, microseconds) costs it nothing it would notice, and an
	// idle process, or one holding idle connections, still wakes once an
	// Interval.
	Busy time.Duration
}

// Defaults suit a worker: a look a second, a trim for 1 MiB or more
// kept beyond the floor once less than 256 KiB was allocated in a second;
// with Open set, a look every 100 ms while 64 connections or more are
// open, and a trim as soon as three quarters of them closed.
var Defaults = Config{Interval: time.Second, Slack: 1 << 20, Quiet: 256 << 10, Crowd: 64, Busy: 100 * time.Millisecond}

// Result is one trim.
type Result struct {
	Before, After uint64        // retained bytes around the trim
	Took          time.Duration // the collection and the return to the OS
	// HeapBefore is the heap's objects before the trim's collection,
	// live and garbage; HeapAfter the live ones it left; Goal the size
	// the heap would have grown to before its next collection.
	HeapBefore, HeapAfter, Goal uint64
	// FellFrom is, for a trim that followed a crowd's connections
	// closing, the most that were open (0 for a quiet Interval's); Open
	// is how many were left.
	FellFrom, Open int64
}

// sample is one look at the runtime: bytes allocated in all, bytes
// retained (mapped memory not given back), the heap's objects and goal,
// and the open connections (0 without Config.Open).
type sample struct {
	allocs, retained uint64
	heap, goal       uint64
	open             int64
	at               time.Time
}

var names = []string{"/gc/heap/allocs:bytes", "/memory/classes/total:bytes", "/memory/classes/heap/released:bytes",
	"/memory/classes/heap/objects:bytes", "/gc/heap/goal:bytes"}

func read(s []metrics.Sample, open func() int64) sample {
	metrics.Read(s)
	out := sample{allocs: s[0].Value.Uint64(), retained: s[1].Value.Uint64() - s[2].Value.Uint64(),
		heap: s[3].Value.Uint64(), goal: s[4].Value.Uint64(), at: time.Now()}
	if open != nil {
		out.open = open()
	}
	return out
}

// watch decides from the samples when a trim is due.
type watch struct {
	cfg   Config
	floor uint64
	last  sample
	seen  bool
	// mark is the last look an Interval or more after the one before
	// it, what quiet and growth are judged against.
	mark sample
	// peak is the most connections seen open since the last trim; quiet
	// says the last Interval was quiet, falling that the last look found
	// a crowd's connections closing.
	peak           int64
	quiet, falling bool
}

// due takes the next sample and reports whether to trim now; fellFrom
// is the most connections that were open when the trim is for their
// closing, 0 otherwise.
func (w *watch) due(s sample) (trim bool, fellFrom int64) {
	if !w.seen {
		w.seen, w.floor, w.last, w.mark, w.peak = true, s.retained, s, s, s.open
		return false, 0
	}
	prev := w.last
	w.last = s
	w.floor = min(w.floor, s.retained)
	w.peak = max(w.peak, s.open)
	armed := w.cfg.Crowd > 0 && w.peak >= w.cfg.Crowd
	// Connections that still close hold what the trim is for: the
	// fall is taken once they stopped (or none is left).
	w.falling = armed && s.open < prev.open && s.open > 0
	if armed && s.open*4 <= w.peak && !w.falling {
		// A crowd's connections closed: what they held is garbage now,
		// which the quiet test would keep resident for an Interval or
		// two more. It trims within the slack too: a burst passed, and
		// what follows a trim (the executable's pages a worker gives
		// back) is worth more than the collection of a small heap.
		return true, w.peak
	}
	// Quiet and growth are judged over an Interval: over a Busy look's
	// 100 ms a worker serving hundreds of connections can allocate
	// next to nothing (descheduled, or answering from its pools), and a
	// trim then would stall it.
	if d := s.at.Sub(w.mark.at); d > 0 && d < w.cfg.Interval {
		return false, 0
	}
	m := w.mark
	w.mark = s
	w.quiet = s.allocs-m.allocs <= w.cfg.Quiet
	return s.retained >= w.floor+w.cfg.Slack && s.retained <= m.retained && w.quiet, 0
}

// interval is how long to wait for the next look: Busy while a crowd is
// open and being served, so that its end is seen soon, and while its
// connections close; a crowd that only waits is looked at once an
// Interval, as an idle process is.
func (w *watch) interval() time.Duration {
	if w.cfg.Busy > 0 && w.cfg.Crowd > 0 && (w.last.open >= w.cfg.Crowd && !w.quiet || w.falling) {
		return w.cfg.Busy
	}
	return w.cfg.Interval
}

// trimmed moves the floor and the connections' mark to what a trim left.
func (w *watch) trimmed(s sample) {
	w.floor, w.last, w.mark, w.peak = s.retained, s, s, s.open
}

// Run looks every cfg.Interval (cfg.Busy while a crowd is open) until
// ctx ends, trims when a burst has passed, and calls done (if not nil)
// after each trim.
func Run(ctx context.Context, cfg Config, done func(Result)) { run(ctx, cfg, nil, done) }

// run is Run, closing ready (if not nil) once it took its first look.
func run(ctx context.Context, cfg Config, ready chan<- struct{}, done func(Result)) {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	w := &watch{cfg: cfg}
	w.due(read(s, cfg.Open))
	if ready != nil {
		close(ready)
	}
	t := time.NewTimer(w.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read(s, cfg.Open)
		trim, fellFrom := w.due(now)
		if trim {
			start := time.Now()
			debug.FreeOSMemory()
			after := read(s, cfg.Open)
			w.trimmed(after)
			if done != nil {
				done(Result{Before: now.retained, After: after.retained, Took: time.Since(start),
					HeapBefore: now.heap, HeapAfter: after.heap, Goal: now.goal, FellFrom: fellFrom, Open: now.open})
			}
		}
		t.Reset(w.interval())
	}
}
