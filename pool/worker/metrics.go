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
	"github.com/hfork/hfork/pool/worker/app"
)

// reqMetrics counts answered requests for the master's metrics: by route
// and status class, by duration, and the body bytes sent. Counting picks
// the host as the site does (app.Hosts), then scans that host's prefixes,
// and does four atomic adds; the heartbeat sends the totals
// (wire.KeyCodes, wire.KeyDuration, wire.KeyBytes) and the master keeps
// the sums, so nothing here is ever reset.
//
// A swap (swap.go) changes the routes under requests in flight, so a
// request is counted under a slot, not a position: slots are only ever
// added, a route keeps its slot (its counts) across swaps for as long as
// its host and prefix stay, and a request that began under the old routes
// still counts where it began.
type reqMetrics struct {
	routes  atomic.Pointer[routeSlots]
	buckets []atomic.Uint64 // per wire.DurationBuckets, then one for longer
	durUS   atomic.Uint64
	bytes   atomic.Uint64
}

// routeSlots is one set of routes' view of the counters.
type routeSlots struct {
	hosts  *app.Hosts          // picks groups[1+i] for host block i
	groups []slotGroup         // the listener's own routes, then each host's
	order  []int               // the slots in wire order (pool.routeKeys)
	codes  []*[5]atomic.Uint64 // by slot: 1xx..5xx; shared by every later set
	byKey  map[slotKey]int
}

// slotGroup is the routes of the listener or of one host.
type slotGroup struct {
	prefixes []string // longest first, as the router matches them
	slot     []int    // prefixes[i] counts in slot[i]
	noRoute  int
}

// slotKey is what keeps a slot across swaps: the host block's label ("" for
// the listener's own routes) and the prefix ("" for no route).
type slotKey struct{ host, prefix string }

func newReqMetrics(l hclconfig.Listener) *reqMetrics {
	m := &reqMetrics{buckets: make([]atomic.Uint64, len(wire.DurationBuckets)+1)}
	m.setRoutes(l)
	return m
}

// setRoutes makes l's routes the ones counted: the same slot for a host
// and prefix already known, a new one for a new one.
func (m *reqMetrics) setRoutes(l hclconfig.Listener) {
	if m == nil {
		return // a worker built without metrics (tests)
	}
	rs := &routeSlots{hosts: app.NewHosts(l.Hosts), byKey: map[slotKey]int{}}
	if prev := m.routes.Load(); prev != nil {
		rs.codes = slices.Clone(prev.codes)
		maps.Copy(rs.byKey, prev.byKey)
	}
	rs.addGroup("", l.Routes)
	for _, h := range l.Hosts {
		rs.addGroup(h.Label, h.Routes)
	}
	m.routes.Store(rs)
}

// addGroup adds one host's routes (host "": the listener's) in wire
// order: its routes in config order, then its no route.
func (rs *routeSlots) addGroup(host string, routes []hclconfig.Route) {
	slotOf := func(prefix string) int {
		k := slotKey{host, prefix}
		if s, ok := rs.byKey[k]; ok {
			return s
		}
		rs.codes = append(rs.codes, new([5]atomic.Uint64))
		rs.byKey[k] = len(rs.codes) - 1
		return len(rs.codes) - 1
	}
	var g slotGroup
	first := len(rs.order)
	for _, r := range routes {
		rs.order = append(rs.order, slotOf(r.Prefix))
	}
	g.noRoute = slotOf("")
	rs.order = append(rs.order, g.noRoute)
	byLen := make([]int, len(routes))
	for i := range byLen {
		byLen[i] = i
	}
	slices.SortStableFunc(byLen, func(a, b int) int { return len(routes[b].Prefix) - len(routes[a].Prefix) })
	for _, i := range byLen {
		g.prefixes = append(g.prefixes, routes[i].Prefix)
		g.slot = append(g.slot, rs.order[first+i])
	}
	rs.groups = append(rs.groups, g)
}

// route is the slot of the route the site picks for a request's Host
// header and path, or that host's (or the listener's) no route slot when
// none of its prefixes matches.
func (m *reqMetrics) route(host, path string) int {
	if m == nil {
		return 0
	}
	rs := m.routes.Load()
	g := &rs.groups[rs.hosts.Pick(host)+1]
	for i, p := range g.prefixes {
		if strings.HasPrefix(path, p) {
			return g.slot[i]
		}
	}
	return g.noRoute
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
