package evloop

import (
	"net/netip"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/poll"
	"golang.org/x/sys/unix"
)

// The reusable queue is nginx's answer to a connection flood: every
// connection that waits for a request, silent since its accept, idle
// between requests, or with a head still incomplete, is queued in the
// order it began to wait. When the worker is at worker_connections and
// clients wait in the accept queue, the loop closes as many of the
// oldest as there are clients waiting, instead of one a tick: a flood of
// silent or slowloris connections then costs a new client one tick, not
// read_header_timeout.

// evictMinQuiet spares connections that just arrived or just went idle:
// their request may be a round trip away. Short, as the oldest go first
// anyway: a flood re-opened all at once must not shelter behind it.
const evictMinQuiet = 100 * time.Millisecond

// evictBatch is how many connections one sweep closes for waiting
// clients when the socket cannot say how many wait (a unix socket).
const evictBatch = 16

// queueReusable puts c at the tail of the reusable queue, if not there.
func (l *Loop) queueReusable(c *conn) {
	if c.queued {
		return
	}
	c.queued = true
	c.rqPrev, c.rqNext = l.rqTail, nil
	if l.rqTail != nil {
		l.rqTail.rqNext = c
	} else {
		l.rqHead = c
	}
	l.rqTail = c
}

// unqueueReusable takes c out of the reusable queue: it has a request
// being answered, or it is closing.
func (l *Loop) unqueueReusable(c *conn) {
	if !c.queued {
		return
	}
	c.queued = false
	if c.rqPrev != nil {
		c.rqPrev.rqNext = c.rqNext
	} else {
		l.rqHead = c.rqNext
	}
	if c.rqNext != nil {
		c.rqNext.rqPrev = c.rqPrev
	} else {
		l.rqTail = c.rqPrev
	}
	c.rqPrev, c.rqNext = nil, nil
}

// evictForWaiting closes up to n of the oldest reusable connections to
// make room for clients in the accept queue, and reports how many it
// closed. Connections that began to wait less than evictMinQuiet ago are
// spared: their request may be a round trip away. An idle connection
// whose next request has begun to arrive, or whose last answer is still
// leaving, is passed over (its close would reset the request or lose the
// answer); a head that is still incomplete is closed.
func (l *Loop) evictForWaiting(n int) int {
	closed := 0
	for c := l.rqHead; c != nil && closed < n; {
		next := c.rqNext
		if l.now-c.since < int64(evictMinQuiet) {
			break // the rest of the queue is younger still
		}
		if c.state == connReading || quiet(c.fd) {
			l.close(c)
			closed++
		}
		c = next
	}
	if closed > 0 {
		l.host.Evicted(time.Unix(0, l.now))
	}
	return closed
}

// waiting is how many clients wait in the accept queues of the loop's
// listening sockets: exact for TCP, evictBatch for a unix socket that
// reports any, 0 for none.
func (l *Loop) waiting() int {
	n, known := poll.Backlog(l.lfds...)
	if !known && poll.Backlogged(l.lfds...) {
		return evictBatch
	}
	return n
}

// peerAddr is the client's IP address, for max_connections_per_ip.
func peerAddr(sa unix.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap()
	}
	return netip.Addr{}
}
