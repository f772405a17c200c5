package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Concurrent writers never interleave inside one Write (run with -race).
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			line := strings.Repeat(string(rune('a'+i)), 64) + "\n"
			for range 100 {
				b.Write([]byte(line))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if len(l) != 64 || strings.Count(l, l[:1]) != 64 {
			t.Fatalf("torn line %q", l)
		}
	}
}
