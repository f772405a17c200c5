package app

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOutOfFDs(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.EMFILE, true},
		{syscall.ENFILE, true},
		{fmt.Errorf("dial: %w", syscall.EMFILE), true},
		{syscall.ENOENT, false},
		{nil, false},
	} {
		if got := OutOfFDs(tc.err); got != tc.want {
			t.Errorf("OutOfFDs(%v) = %v", tc.err, got)
		}
	}
}

// TestFDAlarmPaces: failures within a second after a line are counted
// into the next line, not logged each.
func TestFDAlarmPaces(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var a FDAlarm
	t0 := time.Unix(1000, 0)
	a.note(log, "static file", syscall.EMFILE, t0)
	for i := range 5 {
		a.note(log, "static file", syscall.EMFILE, t0.Add(time.Duration(i+1)*100*time.Millisecond))
	}
	a.note(log, "static file", syscall.EMFILE, t0.Add(1100*time.Millisecond))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "count=1") || !strings.Contains(lines[1], "count=6") {
		t.Errorf("counts: %q", lines)
	}
	if !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "what=\"static file\"") {
		t.Errorf("line: %q", lines[0])
	}
}
