package worker

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestHeapOnUSR1(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	// A channel of the test's own, so that a USR1 never meets a process
	// without a handler for it.
	guard := make(chan os.Signal, 4)
	signal.Notify(guard, syscall.SIGUSR1)
	defer signal.Stop(guard)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	heapOnUSR1(ctx, "", "web", log) // off: nothing to start
	dir := t.TempDir()
	heapOnUSR1(ctx, dir, "web", log)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(dir, "heap-web-*.pprof"))
		if len(files) == 1 {
			if st, err := os.Stat(files[0]); err == nil && st.Size() > 0 {
				break
			}
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("profiles %v after a USR1, want one", files)
		}
	}
}
