package worker

import (
	"log/slog"
	"time"

	"github.com/hfork/hfork/internal/exemem"
)

// settle gives back, once the worker serves, the pages of the executable
// that its start mapped and its work does not use (exemem): 11–12 MB of
// the hfork binary, most of them the code and tables of the packages
// every process of the binary initialises, the master's included, mapped
// 64 KiB at a fault. What serving touches faults back from the page
// cache, so the worker's RSS is then what it uses: about 5 MB of the
// executable after load. Main runs it once, after READY=1. (A collection
// with the free pages returned here as well was measured and gave back
// nothing: start-up leaves under 1 MB of heap.)
func settle(log *slog.Logger) {
	start := time.Now()
	r, err := exemem.Release()
	if err != nil {
		// Nothing is lost but memory: the worker serves as it would.
		log.Warn("worker kept its start-up pages of the executable", "err", err)
	}
	log.Debug("start-up pages of the executable given back", "before_kib", r.Before>>10, "after_kib", r.After>>10,
		"mappings", r.Released, "took_us", time.Since(start).Microseconds())
}
