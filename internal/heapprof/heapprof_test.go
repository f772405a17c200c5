package heapprof

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// kept holds what retainForProfile allocated, so the profile's in-use
// part has it.
var kept [][]byte

//go:noinline
func retainForProfile() {
	for range 64 {
		kept = append(kept, make([]byte, 64<<10))
	}
}

func TestStartOffLeavesRate(t *testing.T) {
	before := runtime.MemProfileRate
	if dir := Start(func(string) string { return "" }); dir != "" {
		t.Fatalf("Start with %s unset = %q, want off", Env, dir)
	}
	if runtime.MemProfileRate != before {
		t.Fatalf("MemProfileRate changed to %d with profiles off", runtime.MemProfileRate)
	}
}

func TestWriteNamesTheAllocator(t *testing.T) {
	dir := t.TempDir()
	got := Start(func(k string) string {
		if k == Env {
			return dir
		}
		return ""
	})
	if got != dir || runtime.MemProfileRate != sampleRate {
		t.Fatalf("Start = %q, rate %d; want %q, rate %d", got, runtime.MemProfileRate, dir, sampleRate)
	}
	retainForProfile()
	p1, err := Write(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Write(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 || filepath.Dir(p1) != dir || !strings.HasPrefix(filepath.Base(p1), "heap-test-") {
		t.Fatalf("paths %q, %q: want two files heap-test-* in %s", p1, p2, dir)
	}
	raw, err := os.ReadFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("profile is not gzip: %v", err)
	}
	pb, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// The profile's string table names the functions of its stacks.
	if !bytes.Contains(pb, []byte("heapprof.retainForProfile")) {
		t.Fatalf("profile (%d bytes) does not name the function that holds 4 MiB", len(pb))
	}
	runtime.KeepAlive(kept)
}

func TestWriteReportsAMissingDir(t *testing.T) {
	if _, err := Write(filepath.Join(t.TempDir(), "absent"), "test"); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
}
