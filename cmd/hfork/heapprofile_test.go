package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// HFORK_HEAP_PROFILE reaches the workers, and USR1 makes the master and
// each worker write a heap profile into it.
func TestHeapProfileOnUSR1(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HFORK_HEAP_PROFILE", dir)
	m, _ := serveWeb(t, "")
	// Both workers ready: one still starting may not reopen yet.
	m.waitLog("hfork ready", 1, 10*time.Second)
	m.signal(syscall.SIGUSR1)
	m.waitLog("heap profile written", 3, 10*time.Second)

	master, _ := filepath.Glob(filepath.Join(dir, "heap-master-*.pprof"))
	workers, _ := filepath.Glob(filepath.Join(dir, "heap-web-*.pprof"))
	if len(master) != 1 || len(workers) != 2 {
		t.Fatalf("profiles: master %v, workers %v; want 1 and 2", master, workers)
	}
	for _, p := range append(master, workers...) {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: not a gzipped profile: %v", p, err)
		}
		pb, err := io.ReadAll(zr)
		if err != nil || !bytes.Contains(pb, []byte("inuse_space")) {
			t.Fatalf("%s: no heap sample types (err %v)", p, err)
		}
	}
}
