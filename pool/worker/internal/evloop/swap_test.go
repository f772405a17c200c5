package evloop

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

// Two swaps before the loop looks: it installs the last, and lets go of
// the first table as well as the one it served with, so nothing that only
// the skipped table held (its access log, its probes) stays open.
func TestSwapTwiceReleasesTheSkippedTable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l, err := New(Config{
		Listeners: []net.Listener{ln}, Fast: fakeFast{}, Log: slog.New(slog.DiscardHandler),
		ReadHeaderTimeout: time.Second, KeepAlive: true,
	}, newHost(4))
	if err != nil {
		t.Fatal(err)
	}
	released := map[string]int{}
	table := func(name string) *Table {
		return &Table{Fast: fakeFast{}, Release: func() { released[name]++ }}
	}
	l.SetRelease(func() { released["boot"]++ })
	a, b := table("a"), table("b")
	l.Swap(a)
	l.Swap(b)
	l.syncTable() // on this goroutine: the loop is not running
	if l.tab != b {
		t.Fatalf("the loop serves %p, want the last table swapped in (%p)", l.tab, b)
	}
	if released["boot"] != 1 || released["a"] != 1 || released["b"] != 0 {
		t.Fatalf("released %v: want the boot table and the skipped one once each, the last not", released)
	}
	l.syncTable()
	if released["a"] != 1 || released["boot"] != 1 {
		t.Fatalf("released %v after a second look: a table is released once", released)
	}
}
