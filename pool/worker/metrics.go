package worker

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// reqMetrics counts answered requests for the master's metrics: by route
// and status class, by duration, and the body bytes sent. Counting is a
// prefix scan over the routes and four atomic adds; the heartbeat sends
// the totals (wire.KeyCodes, wire.KeyDuration, wire.KeyBytes) and the master
// keeps the sums, so nothing here is ever reset.
//
// A swap (swap.go) changes the routes under requests in flight, so a
// request is counted under a slot, not a position: slots are only ever
// added, a route keeps its slot (its counts) across swaps for as long as
// its prefix stays, and a request that began under the old routes still
// counts where it began.
type reqMetrics struct {
	routes  atomic.Pointer[routeSlots]
	buckets []atomic.Uint64 // per wire.DurationBuckets, then one for longer
	durUS   atomic.Uint64
	bytes   atomic.Uint64
}

// routeSlots is one set of routes' view of the counters.
type routeSlots struct {
	prefixes []string // longest first, as the router matches them
	slot     []int    // prefixes[i] counts in slot[i]
	order    []int    // the slots of the routes in config order, then no route's
	noRoute  int
	codes    []*[5]atomic.Uint64 // by slot: 1xx..5xx; shared by every later set
	byPrefix map[string]int
}

func newReqMetrics(l hclconfig.Listener) *reqMetrics {
	m := &reqMetrics{buckets: make([]atomic.Uint64, len(wire.DurationBuckets)+1)}
	m.setRoutes(l)
	return m
}

// setRoutes makes l's routes the ones counted: the same slot for a prefix
// already known, a new one for a new prefix. On first use the slots are
// the config order and no route is the last, as the wire says.
func (m *reqMetrics) setRoutes(l hclconfig.Listener) {
	if m == nil {
		return // a worker built without metrics (tests)
	}
	prev := m.routes.Load()
	rs := &routeSlots{byPrefix: map[string]int{}}
	if prev != nil {
		rs.codes = slices.Clone(prev.codes)
		maps.Copy(rs.byPrefix, prev.byPrefix)
		rs.noRoute = prev.noRoute
	}
	slotOf := func(prefix string) int {
		if s, ok := rs.byPrefix[prefix]; ok {
			return s
		}
		rs.codes = append(rs.codes, new([5]atomic.Uint64))
		rs.byPrefix[prefix] = len(rs.codes) - 1
		return len(rs.codes) - 1
	}
	for _, r := range l.Routes {
		rs.order = append(rs.order, slotOf(r.Prefix))
	}
	if prev == nil {
		rs.codes = append(rs.codes, new([5]atomic.Uint64))
		rs.noRoute = len(rs.codes) - 1
	}
	rs.order = append(rs.order, rs.noRoute)
	order := make([]int, len(l.Routes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(l.Routes[b].Prefix) - len(l.Routes[a].Prefix) })
	for _, i := range order {
		rs.prefixes = append(rs.prefixes, l.Routes[i].Prefix)
		rs.slot = append(rs.slot, rs.order[i])
	}
	m.routes.Store(rs)
}

// route is the slot of the route the router picks for path, or no
// route's slot when none matches.
func (m *reqMetrics) route(path string) int {
	if m == nil {
		return 0
	}
	rs := m.routes.Load()
	for i, p := range rs.prefixes {
		if strings.HasPrefix(path, p) {
			return rs.slot[i]
		}
	}
	return rs.noRoute
}

// observe counts one answered request.
func (m *reqMetrics) observe(route, status int, d time.Duration, bytes int64) {
	if m == nil {
		return // a worker built without metrics (tests)
	}
	class := min(max(status/100, 1), 5) - 1
	m.routes.Load().codes[route][class].Add(1)
	b := 0
	for b < len(wire.DurationBuckets) && d > wire.DurationBuckets[b] {
		b++
	}
	m.buckets[b].Add(1)
	if d > 0 {
		m.durUS.Add(uint64(d / time.Microsecond))
	}
	if bytes > 0 {
		m.bytes.Add(uint64(bytes))
	}
}

// appendFields adds the counters to a heartbeat.
func (m *reqMetrics) appendFields(b *strings.Builder) {
	if m == nil {
		return
	}
	b.WriteString("\n" + wire.KeyCodes + "=")
	rs := m.routes.Load()
	for i, slot := range rs.order {
		for j := range rs.codes[slot] {
			if i > 0 || j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(rs.codes[slot][j].Load(), 10))
		}
	}
	b.WriteString("\n" + wire.KeyDuration + "=")
	for i := range m.buckets {
		b.WriteString(strconv.FormatUint(m.buckets[i].Load(), 10))
		b.WriteByte(',')
	}
	b.WriteString(strconv.FormatUint(m.durUS.Load(), 10))
	b.WriteString("\n" + wire.KeyBytes + "=" + strconv.FormatUint(m.bytes.Load(), 10))
}

// servedRoute counts a request the event loop answered, itself or from an
// upstream; began is the loop's clock (Unix nanoseconds) when it read the
// request's head.
func (w *worker) servedRoute(route, status int, bytes int64, began int64) {
	w.metrics.observe(route, status, time.Duration(time.Now().UnixNano()-began), bytes)
	w.served()
}

// connCounts is "open,idle,upgraded" for the heartbeat: net/http's
// connections by state, and the event loop's, which all count as idle: the
// loop answers a request in the pass that read it, so between passes its
// connections wait for the next request (a proxied request that waits for
// its upstream is the exception, and counts as idle too).
func (w *worker) connCounts() (open, idle, upgraded int) {
	w.connsMu.Lock()
	for c := range w.conns {
		c.mu.Lock()
		switch c.state {
		case http.StateIdle:
			idle++
		case http.StateHijacked:
			upgraded++
		}
		c.mu.Unlock()
	}
	open = len(w.conns)
	w.connsMu.Unlock()
	if w.loop != nil {
		n := int(w.loop.Open())
		open += n
		idle += n
	}
	return open, idle, upgraded
}

// maxNamed bounds the connections a heartbeat names.
const maxNamed = 8

// namedConns names what a drain would have to wait for: the oldest
// requests in flight and the upgraded connections (WebSockets), each
// "KIND AGE_MS METHOD PATH", at most maxNamed in all. The event loop's
// connections are not named (its downloads count as open connections).
func (w *worker) namedConns(now time.Time) []string {
	out := w.track.oldest(maxNamed, now)
	w.connsMu.Lock()
	for c := range w.conns {
		if len(out) >= maxNamed {
			break
		}
		c.mu.Lock()
		if c.state == http.StateHijacked && c.stream != "" {
			out = append(out, "upgraded "+strconv.FormatInt(now.Sub(c.streamAt).Milliseconds(), 10)+" "+c.stream)
		}
		c.mu.Unlock()
	}
	w.connsMu.Unlock()
	return out
}
