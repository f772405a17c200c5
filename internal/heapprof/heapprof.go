package heapprof

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
)

// Env names the directory profiles are written to; unset or empty, none
// are.
const Env = "HFORK_HEAP_PROFILE"

// sampleRate is the runtime's heap sampling interval while profiles are
// on: the default (512 KiB) sees little of a heap of a few MiB, which is
// what a worker holds.
const sampleRate = 16 << 10

var seq atomic.Int64

// defaultRate is the runtime's own sampling interval.
const defaultRate = 512 << 10

// Start reads Env with getenv and returns the directory profiles go to,
// or "" when they are off. When on, it raises the sampling rate, which
// counts only allocations made after it: call it first thing. A rate set
// with GODEBUG=memprofilerate=N (which also sees the allocations of
// package initialisation) is kept.
func Start(getenv func(string) string) string {
	dir := getenv(Env)
	if dir != "" && runtime.MemProfileRate == defaultRate {
		runtime.MemProfileRate = sampleRate
	}
	return dir
}

// Write runs a collection and writes the heap profile (in-use and
// allocated since start) to dir as heap-<name>-<pid>-<n>.pprof, n
// counting from 1 in this process, and returns the file's path.
func Write(dir, name string) (string, error) {
	n := seq.Add(1)
	path := filepath.Join(dir, fmt.Sprintf("heap-%s-%d-%d.pprof", name, os.Getpid(), n))
	runtime.GC()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return "", fmt.Errorf("heap profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("heap profile %s: %w", path, err)
	}
	return path, nil
}
