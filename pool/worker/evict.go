package worker

import (
	"net"
	"syscall"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/poll"
)

// A worker at worker_connections makes room for a new client by closing
// its longest-quiet connection, as nginx reuses keep-alive connections
// when it runs out: otherwise a thousand idle clients (or a thousand
// sockets opened to hold them) would starve everyone else of a worker.
const (
	// evictPoll is how often a full worker looks for clients waiting in
	// the socket's accept queue.
	evictPoll = 50 * time.Millisecond
	// evictMinQuiet spares connections that just arrived or just went
	// idle: their request may be a round trip away (the event loop spares
	// its own as long).
	evictMinQuiet = 500 * time.Millisecond
	// evictLogEvery bounds the warning about evictions to one line.
	evictLogEvery = 10 * time.Second
)

// acquire takes a connection slot, waiting for one to free. While it
// waits, a worker of a class that keeps connections open closes its
// quietest idle connection whenever a client waits in the accept queue.
func (l *gatedListener) acquire(sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	var tick <-chan time.Time
	if l.w.limits.evict {
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
			if backlogged(l.Listener) {
				l.w.evictQuietest(now)
			}
		}
	}
}

// backlogged reports whether a connection waits in ln's accept queue (see
// poll.Backlogged, which the event loop asks too).
func backlogged(ln net.Listener) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	rc.Control(func(fd uintptr) { ready = poll.Backlogged(int(fd)) })
	return ready
}

// evictQuietest closes the connection that has been quiet the longest, if
// one has been for evictMinQuiet, the way a drain closes an idle one.
func (w *worker) evictQuietest(now time.Time) {
	var victim *trackedConn
	var longest time.Duration
	for _, c := range w.snapshotConns() {
		c.mu.Lock()
		quiet, ok := c.quietFor(now)
		c.mu.Unlock()
		if ok && quiet >= evictMinQuiet && quiet > longest {
			victim, longest = c, quiet
		}
	}
	if victim == nil || !victim.kick(now, time.Time{}, evictMinQuiet) {
		return
	}
	w.noteEviction(now)
}

// noteEviction counts an idle connection closed to make room, with one
// warning every evictLogEvery.
func (w *worker) noteEviction(now time.Time) {
	n := w.evicted.Add(1)
	if last := w.evictLogged.Load(); now.UnixNano()-last >= int64(evictLogEvery) && w.evictLogged.CompareAndSwap(last, now.UnixNano()) {
		w.log.Warn("worker at worker_connections; closing idle connections to accept new ones",
			"worker_connections", cap(w.connSem), "evicted", n)
	}
}
