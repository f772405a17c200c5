package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/hfork/hfork/internal/exemem"
	"github.com/hfork/hfork/internal/memtrim"
)

// settle keeps a worker's memory to what it uses, from the moment it
// serves (options.Started, after READY=1) until ctx ends.
//
// First it gives back the pages of the executable that its start mapped
// and its work does not use (exemem): 11–12 MB of the hfork binary, most
// of them the code and tables of the packages every process of the
// binary initialises, the master's included, mapped 64 KiB at a fault.
// What serving touches faults back from the page cache, so the worker's
// RSS is then what it uses: about 5 MB of the executable after load. (A
// collection with the free pages returned here as well was measured and
// gave back nothing: start-up leaves under 1 MB of heap.)
//
// Then it watches the runtime's memory and the worker's open
// connections (memtrim) and, once a burst has passed, returns the free
// heap to the OS and releases the executable's pages again: a burst and
// its garbage collections map 2–6 MB more of the binary (the collector's
// and the TLS and HTTP/2 code's pages), which a quiet worker does not
// use. What the next burst needs faults back from the page cache, 64 KiB
// a fault: the 8 MB given back are at most a few hundred faults, lost in
// the burst's own (h2load -c1000 on two TLS workers, a second burst after
// a trim and a release: 13,418–13,552 faults, against 13,995–14,881
// without the release).
func settle(ctx context.Context, log *slog.Logger, open func() int64) {
	releaseExe(log, "start-up pages of the executable given back")
	cfg := memtrim.Defaults
	cfg.Open = open
	memtrim.Run(ctx, cfg, func(r memtrim.Result) {
		log.Debug("memory returned to the OS", "before_kib", r.Before>>10, "after_kib", r.After>>10,
			"heap_before_kib", r.HeapBefore>>10, "heap_after_kib", r.HeapAfter>>10, "goal_kib", r.Goal>>10,
			"conns_fell_from", r.FellFrom, "conns", r.Open, "took_us", r.Took.Microseconds())
		releaseExe(log, "executable pages given back after a burst")
	})
}

// releaseExe gives back the executable's read-only pages (exemem) and
// logs what they were at debug level as msg.
func releaseExe(log *slog.Logger, msg string) {
	start := time.Now()
	r, err := exemem.Release()
	if err != nil {
		// Nothing is lost but memory: the worker serves as it would.
		log.Warn("worker kept pages of the executable", "err", err)
	}
	log.Debug(msg, "before_kib", r.Before>>10, "after_kib", r.After>>10,
		"mappings", r.Released, "took_us", time.Since(start).Microseconds())
}

// openConns counts the connections the worker holds: net/http's and the
// event loop's.
func (w *worker) openConns() int64 { return w.open.Load() + w.loopOpen() }
