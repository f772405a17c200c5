package worker

import (
	"log/slog"

	"github.com/hfork/hfork/internal/heapprof"
)

// heapOnReopen is reopen followed, when HFORK_HEAP_PROFILE named dir, by
// a heap profile: SIGUSR1 after a burst of load shows what the worker
// kept of it.
func heapOnReopen(reopen func() error, dir, name string, log *slog.Logger) func() error {
	if dir == "" {
		return reopen
	}
	return func() error {
		err := reopen()
		writeHeap(dir, name, log)
		return err
	}
}

// writeHeap writes the worker's heap profile to dir, if dir is set.
func writeHeap(dir, name string, log *slog.Logger) {
	if dir == "" {
		return
	}
	path, err := heapprof.Write(dir, name)
	if err != nil {
		log.Warn("heap profile not written", "err", err)
		return
	}
	log.Info("heap profile written", append([]any{"path", path}, heapprof.Memory()...)...)
}
