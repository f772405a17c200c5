package worker

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/poll"
)

// A worker at worker_connections makes room for new clients by closing
// its reusable connections, oldest first, as nginx does when it runs
// out: those silent since their accept, idle between requests, or with a
// head still incomplete. Otherwise a thousand sockets opened and left
// silent, or trickling their headers, would starve everyone else of a
// worker until read_header_timeout. It closes as many as there are
// clients waiting in the accept queue, every evictPoll, so a flood costs
// a new client a tick, not a connection a tick.
const (
	// evictPoll is how often a full worker looks for clients waiting in
	// the socket's accept queue.
	evictPoll = 50 * time.Millisecond
	// evictBatch is how many connections one tick closes when the socket
	// cannot say how many clients wait (a unix socket).
	evictBatch = 16
	// evictMinQuiet spares connections that just arrived or just went
	// idle: their request may be a round trip away (the event loop
	// spares its own as long). Short, as the oldest go first anyway: a
	// flood re-opened all at once must not shelter behind it.
	evictMinQuiet = 100 * time.Millisecond
	// evictHeadQuiet spares a head with bytes that recent: it may be
	// complete, net/http not yet through it. Slowloris trickles slower.
	evictHeadQuiet = 50 * time.Millisecond
	// evictLogEvery bounds the warning about evictions to one line.
	evictLogEvery = 10 * time.Second
)

// acquire takes a connection slot, waiting for one to free. While it
// waits, a worker of a class that keeps connections open closes its
// oldest reusable connections for the clients in the accept queue.
func (l *gatedListener) acquire(sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	var tick <-chan time.Time
	if l.w.limits.evict {
		// Make room at once for the clients waiting (see accept.go of the
		// event loop): a tick's wait is what a flood wins.
		if n := waiting(l.Listener); n > 0 {
			l.w.evictFor(time.Now(), n)
		}
		t := time.NewTicker(evictPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case sem <- struct{}{}:
			return nil
		case <-l.done:
			return net.ErrClosed
		case now := <-tick:
			if n := waiting(l.Listener); n > 0 {
				l.w.evictFor(now, n)
			}
		}
	}
}

// waiting is how many clients wait in ln's accept queue (see
// poll.Backlog, which the event loop asks too).
func waiting(ln net.Listener) int {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		var known bool
		if n, known = poll.Backlog(int(fd)); !known && poll.Backlogged(int(fd)) {
			n = evictBatch
		}
	})
	return n
}

// reusable reports whether c waits for a request, silent, idle or with
// part of a head, and since when: a full worker may close it for a new
// client (evict.go). HTTP/2 connections close themselves with a GOAWAY.
func (c *trackedConn) reusable() (time.Time, bool) {
	if (c.state != http.StateIdle && c.state != http.StateNew) || c.h2 || c.evicted.Load() {
		return time.Time{}, false
	}
	return c.since, true
}

// evict wakes c's read for good, so net/http closes it. A connection
// that began to wait less than evictMinQuiet ago is spared (its request
// may be a round trip away), and so is an idle one whose next request
// has begun to arrive, or a head whose last bytes came evictHeadQuiet
// ago: net/http may not have parsed a complete one yet. It reports
// whether it evicted.
func (c *trackedConn) evict(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.reusable(); !ok {
		return false
	}
	if now.Sub(c.since) < evictMinQuiet {
		return false
	}
	if c.gotData {
		if now.Sub(c.lastData) < evictHeadQuiet {
			return false
		}
	} else if pending(c.Conn) {
		return false
	}
	c.evicted.Store(true)
	c.Conn.SetReadDeadline(aLongTimeAgo)
	return true
}

// reuseQueue holds the connections net/http serves that wait for a
// request (silent since their accept, idle, or with a head still
// incomplete) in the order they began to wait, as the event loop's
// reusable queue: a full worker evicts from its head at the cost of the
// connections it closes, where a scan of every connection made each
// accept of a flood cost a sort of worker_connections.
type reuseQueue struct {
	mu         sync.Mutex
	head, tail *trackedConn
	// pending counts connections evicted whose net/http goroutine has
	// not yet closed them: their slots are on their way back, so the
	// next accept evicts that many fewer.
	pending atomic.Int64
}

// push puts c at the tail, if it is not queued, as waiting since now.
func (q *reuseQueue) push(c *trackedConn, now time.Time) {
	q.mu.Lock()
	if !c.queued && !c.gone {
		c.queued, c.queuedAt = true, now
		c.rqPrev, c.rqNext = q.tail, nil
		if q.tail != nil {
			q.tail.rqNext = c
		} else {
			q.head = c
		}
		q.tail = c
	}
	q.mu.Unlock()
}

// remove takes c out of the queue, if it is there.
func (q *reuseQueue) remove(c *trackedConn) {
	q.mu.Lock()
	q.unlink(c)
	q.mu.Unlock()
}

// forget takes c out for good: a state change that races its close
// does not queue it again.
func (q *reuseQueue) forget(c *trackedConn) {
	q.mu.Lock()
	q.unlink(c)
	c.gone = true
	q.mu.Unlock()
	if c.evicted.Load() {
		q.pending.Add(-1)
	}
}

func (q *reuseQueue) unlink(c *trackedConn) {
	if !c.queued {
		return
	}
	c.queued = false
	if c.rqPrev != nil {
		c.rqPrev.rqNext = c.rqNext
	} else {
		q.head = c.rqNext
	}
	if c.rqNext != nil {
		c.rqNext.rqPrev = c.rqPrev
	} else {
		q.tail = c.rqPrev
	}
	c.rqPrev, c.rqNext = nil, nil
}

// oldest lists up to n connections from the head that began to wait
// evictMinQuiet before now or earlier (the rest are younger still).
func (q *reuseQueue) oldest(now time.Time, n int) []*trackedConn {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*trackedConn
	for c := q.head; c != nil && len(out) < n; c = c.rqNext {
		if now.Sub(c.queuedAt) < evictMinQuiet {
			break
		}
		out = append(out, c)
	}
	return out
}

// evictFor closes reusable connections for the n clients waiting in the
// accept queue, less those whose evicted connections are still closing.
func (w *worker) evictFor(now time.Time, n int) {
	if n -= int(w.reuse.pending.Load()); n > 0 {
		w.evictOldest(now, n)
	}
}

// evictOldest closes up to n reusable connections, those that began to
// wait the earliest first. net/http closes each once its read wakes. It
// looks at a few more than n: one whose request has begun to arrive is
// passed over and stays queued.
func (w *worker) evictOldest(now time.Time, n int) {
	closed := 0
	for _, c := range w.reuse.oldest(now, n+evictLookAhead) {
		if closed == n {
			break
		}
		if c.evict(now) {
			w.reuse.remove(c)
			w.reuse.pending.Add(1)
			closed++
		}
	}
	if closed > 0 {
		w.noteEvictions(now, closed)
	}
}

// evictLookAhead is how many connections past n one eviction looks at.
const evictLookAhead = 32

// noteEviction counts one idle connection the event loop closed.
func (w *worker) noteEviction(now time.Time) { w.noteEvictions(now, 1) }

// noteEvictions counts connections closed to make room, with one warning
// every evictLogEvery.
func (w *worker) noteEvictions(now time.Time, k int) {
	n := w.evicted.Add(uint64(k))
	if last := w.evictLogged.Load(); now.UnixNano()-last >= int64(evictLogEvery) && w.evictLogged.CompareAndSwap(last, now.UnixNano()) {
		w.log.Warn("worker at worker_connections; closing idle connections to accept new ones",
			"worker_connections", cap(w.connSem), "evicted", n)
	}
}

// perIP counts a worker's connections by client address, for
// max_connections_per_ip. The zero cap counts nothing.
type perIP struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

// admit counts a connection from ip, or reports false when ip holds its
// share already.
func (p *perIP) admit(ip netip.Addr) bool {
	if p.max <= 0 || !ip.IsValid() {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip] >= p.max {
		return false
	}
	if p.n == nil {
		p.n = make(map[netip.Addr]int)
	}
	p.n[ip]++
	return true
}

// leave gives back what admit counted.
func (p *perIP) leave(ip netip.Addr) {
	if p.max <= 0 || !ip.IsValid() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip] <= 1 {
		delete(p.n, ip)
		return
	}
	p.n[ip]--
}

// remoteIP is nc's client address, or the zero Addr for a unix socket.
func remoteIP(nc net.Conn) netip.Addr {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
