package worker

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestHeapOnReopen(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	reopened := 0
	reopen := func() error { reopened++; return errors.New("reopen failed") }

	off := heapOnReopen(reopen, "", "web", log)
	if err := off(); err == nil || reopened != 1 {
		t.Fatalf("off: err %v, reopened %d; want reopen's error, once", err, reopened)
	}

	dir := t.TempDir()
	on := heapOnReopen(reopen, dir, "web", log)
	if err := on(); err == nil || reopened != 2 {
		t.Fatalf("on: err %v, reopened %d; want reopen's error, twice in all", err, reopened)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "heap-web-*.pprof"))
	if len(files) != 1 {
		t.Fatalf("profiles %v, want one after one reopen", files)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Size() == 0 {
		t.Fatalf("profile %s: %v, size %v", files[0], err, st)
	}
}
