package worker

import (
	"sync"
	"testing"
	"time"
)

func TestTrackerOldestFirst(t *testing.T) {
	var tr tracker
	t0 := time.Now()
	var a, b, c reqSlot
	tr.begin(&a, "GET", "/a", t0)
	tr.begin(&b, "POST", "/b", t0.Add(time.Second))
	tr.begin(&c, "GET", "/c", t0.Add(2*time.Second))

	l := tr.snapshot(t0.Add(3 * time.Second))
	if l.Inflight != 3 || l.Oldest != 3*time.Second || l.OldestReq != "GET /a" || l.Served != 0 {
		t.Fatalf("snapshot = %+v", l)
	}
	// Ending the middle one keeps the oldest; ending the oldest promotes
	// the next.
	tr.end(&b)
	if l = tr.snapshot(t0.Add(3 * time.Second)); l.OldestReq != "GET /a" || l.Inflight != 2 {
		t.Fatalf("after ending /b: %+v", l)
	}
	tr.end(&a)
	if l = tr.snapshot(t0.Add(3 * time.Second)); l.OldestReq != "GET /c" || l.Oldest != time.Second {
		t.Fatalf("after ending /a: %+v", l)
	}
	if served, ok := tr.end(&c); !ok || served != 3 {
		t.Fatalf("end = %d, %v; want 3, true", served, ok)
	}
	if _, ok := tr.end(&c); ok {
		t.Fatal("a request ended twice was counted twice")
	}
	if l = tr.snapshot(t0); l != (load{Served: 3}) {
		t.Fatalf("idle snapshot = %+v", l)
	}
	// A slot is reusable after it ended.
	tr.begin(&a, "GET", "/again", t0)
	if l = tr.snapshot(t0); l.OldestReq != "GET /again" || l.Inflight != 1 {
		t.Fatalf("reused slot: %+v", l)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	var tr tracker
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var s reqSlot
			for range 1000 {
				tr.begin(&s, "GET", "/", time.Now())
				tr.snapshot(time.Now())
				tr.end(&s)
			}
		})
	}
	wg.Wait()
	if l := tr.snapshot(time.Now()); l.Served != 8000 || l.Inflight != 0 || tr.head != nil || tr.tail != nil {
		t.Fatalf("after 8000 requests: %+v, head %p, tail %p", l, tr.head, tr.tail)
	}
}

func TestNotifySafe(t *testing.T) {
	long := make([]byte, 2*maxReqLen)
	for i := range long {
		long[i] = 'x'
	}
	for in, want := range map[string]string{
		"/a/b":            "/a/b",
		"/x\nWATCHDOG=1":  "/x?WATCHDOG=1",
		"/tab\there\x7f":  "/tab?here?",
		"/ünïcode":        "/ünïcode",
		string(long[:20]): string(long[:20]),
	} {
		if got := notifySafe(in); got != want {
			t.Errorf("notifySafe(%q) = %q, want %q", in, got, want)
		}
	}
	if got := notifySafe(string(long)); len(got) != maxReqLen {
		t.Errorf("a long path is reported with %d bytes, want %d", len(got), maxReqLen)
	}
}

// BenchmarkTrack is the tracking cost of one request: begin and end.
func BenchmarkTrack(b *testing.B) {
	var tr tracker
	var s reqSlot
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		tr.begin(&s, "GET", "/", now)
		tr.end(&s)
	}
}

// BenchmarkTrackParallel is the same with every core tracking at once and
// other requests in flight, the worst case for the shared lock.
func BenchmarkTrackParallel(b *testing.B) {
	var tr tracker
	long := make([]reqSlot, 64)
	for i := range long {
		tr.begin(&long[i], "GET", "/long", time.Now())
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var s reqSlot
		for pb.Next() {
			tr.begin(&s, "GET", "/", time.Now())
			tr.end(&s)
		}
	})
}

// BenchmarkHeartbeat is one heartbeat: a snapshot and its datagram text.
func BenchmarkHeartbeat(b *testing.B) {
	var tr tracker
	var s reqSlot
	tr.begin(&s, "GET", "/some/path", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		_ = heartbeat(tr.snapshot(time.Now()))
	}
}
