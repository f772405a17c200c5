package worker

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Notifier sends sd_notify state strings ("READY=1", "WATCHDOG=1\n…") to
// whoever supervises the worker.
type Notifier interface {
	Notify(state string) error
}

// NotifySocket is an sd_notify client: a unix datagram socket connected to
// NOTIFY_SOCKET. Each Notify call is one datagram, so the lines of one
// heartbeat always arrive together.
type NotifySocket struct {
	conn *net.UnixConn
}

// DialNotify connects to the notify socket at addr, a path or, with a
// leading '@', a name in Linux's abstract namespace (the net package maps
// the '@' to the leading NUL byte the kernel expects).
func DialNotify(addr string) (*NotifySocket, error) {
	if addr == "" {
		return nil, fmt.Errorf("dial notify socket: empty address")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("dial notify socket %s: %w", addr, err)
	}
	return &NotifySocket{conn: conn}, nil
}

// notifyWait bounds how long one datagram may wait for room: the
// kernel queues only a few datagrams (net.unix.max_dgram_qlen) for a master
// that is busy, and a worker must not stall on it.
const notifyWait = 2 * time.Second

// Notify sends state as one datagram. It is safe for concurrent use.
func (n *NotifySocket) Notify(state string) error {
	n.conn.SetWriteDeadline(time.Now().Add(notifyWait))
	if _, err := n.conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Close closes the socket.
func (n *NotifySocket) Close() error {
	return n.conn.Close()
}

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
	var b strings.Builder
	b.Grow(96 + len(l.OldestReq))
	// READY=1 rides along so a READY datagram lost to a full queue is
	// made good by the next beat; the master ignores it once it has one.
	b.WriteString("READY=1\nWATCHDOG=1\n")
	b.WriteString(NotifyRequests + "=" + strconv.FormatUint(l.Served, 10) + "\n")
	b.WriteString(NotifyInflight + "=" + strconv.Itoa(l.Inflight) + "\n")
	b.WriteString(NotifyOldestMS + "=" + strconv.FormatInt(l.Oldest.Milliseconds(), 10) + "\n")
	b.WriteString(NotifyOldestReq + "=" + l.OldestReq)
	return b.String()
}

// heartbeat is the worker's beat: its load, its request counters and its
// connections.
func (w *worker) heartbeat(now time.Time) string {
	var b strings.Builder
	b.WriteString(heartbeat(w.track.snapshot(now)))
	w.metrics.appendFields(&b)
	open, idle, upgraded := w.connCounts()
	b.WriteString("\n" + NotifyConns + "=" + strconv.Itoa(open) + "," + strconv.Itoa(idle) + "," + strconv.Itoa(upgraded))
	b.WriteString("\n" + NotifyNamed + "=" + strings.Join(w.namedConns(now), "\t"))
	return b.String()
}
