package worker

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hfork/hfork/internal/heapprof"
)

// heapOnUSR1 writes a heap profile at each SIGUSR1 until ctx ends, when
// HFORK_HEAP_PROFILE named dir: USR1 after a burst of load shows what
// the worker kept of it. The signal reaches the worker's own handling
// (the access log's reopen) too: Go delivers it to every channel that
// asked for it.
func heapOnUSR1(ctx context.Context, dir, name string, log *slog.Logger) {
	if dir == "" {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				writeHeap(dir, name, log)
			}
		}
	}()
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
