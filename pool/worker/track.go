package worker

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reqSlot is one request's entry in the in-flight list. It lives inside the
// connection that carries the request and is reused by the next request on
// that connection (HTTP/1 serves one request at a time per connection), so
// tracking a request allocates nothing.
type reqSlot struct {
	prev, next *reqSlot
	linked     bool
	start      time.Time
	method     string
	path       string
}

// tracker counts served requests and keeps the in-flight ones in the order
// they started: an intrusive doubly linked list under one mutex, so begin
// and end are O(1) and the oldest request is always the head. The master's
// timeout needs only the oldest, so nothing is ever sorted or scanned.
type tracker struct {
	served atomic.Uint64

	mu         sync.Mutex
	head, tail *reqSlot
	inflight   int
}

// begin links s at the tail: it is the newest request.
func (t *tracker) begin(s *reqSlot, method, path string, now time.Time) {
	s.start, s.method, s.path = now, method, path
	t.mu.Lock()
	s.prev, s.next = t.tail, nil
	if t.tail != nil {
		t.tail.next = s
	} else {
		t.head = s
	}
	t.tail = s
	s.linked = true
	t.inflight++
	t.mu.Unlock()
}

// end unlinks s and counts it as served. It reports the served count after
// it and whether s was still tracked: ending a request twice (an upgrade,
// then the handler's return) counts it once.
func (t *tracker) end(s *reqSlot) (served uint64, ok bool) {
	t.mu.Lock()
	if !s.linked {
		t.mu.Unlock()
		return 0, false
	}
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		t.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		t.tail = s.prev
	}
	s.prev, s.next, s.linked = nil, nil, false
	t.inflight--
	t.mu.Unlock()
	return t.served.Add(1), true
}

// load is what a heartbeat reports.
type load struct {
	Served    uint64
	Inflight  int
	Oldest    time.Duration // 0 when nothing is in flight
	OldestReq string        // "METHOD PATH" of the oldest request
}

// snapshot reads the counters and the oldest in-flight request.
func (t *tracker) snapshot(now time.Time) load {
	t.mu.Lock()
	l := load{Inflight: t.inflight}
	var method, path string
	if h := t.head; h != nil {
		l.Oldest = max(now.Sub(h.start), 0)
		method, path = h.method, h.path
	}
	t.mu.Unlock()
	l.Served = t.served.Load()
	if method != "" {
		l.OldestReq = method + " " + notifySafe(path)
	}
	return l
}

// maxReqLen bounds the path reported in a heartbeat; an operator needs to
// recognise the request, not to replay it.
const maxReqLen = 256

// notifySafe makes a decoded URL path fit in one sd_notify value: a
// request path may contain any byte, and a newline would end the field.
func notifySafe(p string) string {
	if len(p) > maxReqLen {
		p = p[:maxReqLen]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, p)
}

// oldest lists up to n requests in flight, oldest first, as
// "request AGE_MS METHOD PATH".
func (t *tracker) oldest(n int, now time.Time) []string {
	var out []string
	t.mu.Lock()
	for s := t.head; s != nil && len(out) < n; s = s.next {
		out = append(out, "request "+strconv.FormatInt(max(now.Sub(s.start), 0).Milliseconds(), 10)+" "+s.method+" "+s.path)
	}
	t.mu.Unlock()
	for i, e := range out {
		out[i] = notifySafe(e)
	}
	return out
}
