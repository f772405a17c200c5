package worker

import (
	"strconv"
	"strings"
	"time"

	"github.com/hfork/hfork/pool/wire"
)

// notifyWait bounds how long one datagram may wait for room: the kernel
// queues only a few datagrams (net.unix.max_dgram_qlen) for a master that
// is busy, and a worker must not stall on it.
const notifyWait = 2 * time.Second

// heartbeatInterval is how often a worker reports. A master that kills
// requests older than timeout must see the oldest one soon enough to keep
// that promise, so a short timeout beats faster; a floor keeps a tiny
// timeout from turning heartbeats into load.
func heartbeatInterval(timeout time.Duration) time.Duration {
	d := time.Second
	if timeout > 0 {
		d = min(d, timeout/4)
	}
	return max(d, 100*time.Millisecond)
}

// heartbeat formats the WATCHDOG datagram with the worker's counters.
func heartbeat(l load) string {
	return wire.Heartbeat(wire.Load{Requests: l.Served, Inflight: l.Inflight, Oldest: l.Oldest, OldestReq: l.OldestReq})
}

// heartbeat is the worker's beat: its load, its request counters and its
// connections.
func (w *worker) heartbeat(now time.Time) string {
	var b strings.Builder
	l := w.track.snapshot(now)
	// The event loop's answers still being written (a file, a proxied
	// answer) are in flight too, though no request of net/http's is.
	l.Inflight += int(w.loopBusy())
	b.WriteString(heartbeat(l))
	w.metrics.appendFields(&b)
	open, idle, upgraded := w.connCounts()
	b.WriteString("\n" + wire.KeyConns + "=" + strconv.Itoa(open) + "," + strconv.Itoa(idle) + "," + strconv.Itoa(upgraded))
	b.WriteString("\n" + wire.KeyNamed + "=" + strings.Join(w.namedConns(now), "\t"))
	return b.String()
}
