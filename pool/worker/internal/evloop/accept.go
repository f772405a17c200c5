package evloop

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/poll"
	"golang.org/x/sys/unix"
)

// startAccepting puts the listening fds in the epoll set. EPOLLEXCLUSIVE
// wakes one waiting worker per new connection instead of all of them.
func (l *Loop) startAccepting() error {
	if l.accepting {
		return nil
	}
	for _, fd := range l.lfds {
		if err := l.poll.Add(fd, poll.In|poll.Exclusive); err != nil {
			return fmt.Errorf("listener: %w", err)
		}
	}
	l.accepting = true
	return nil
}

func (l *Loop) stopAccepting() {
	if !l.accepting {
		return
	}
	for _, fd := range l.lfds {
		l.poll.Del(fd)
	}
	l.accepting = false
}

func (l *Loop) isListener(fd int) bool {
	for _, lfd := range l.lfds {
		if fd == lfd {
			return true
		}
	}
	return false
}

// acceptBatch is how many connections one listener event accepts at most.
// One per event (nginx without multi_accept) lets a burst of a thousand
// clients wait for as many passes of the loop; a whole queue per event
// leaves nothing of a burst to a sibling. Eight keeps the accept rate well
// above any connect rate a loaded loop meets and the burst shared.
const acceptBatch = 8

// acceptOneUpTo: while a loop with siblings holds at most this many
// connections it accepts one per event and then leaves the socket to its
// siblings for acceptPause per connection it holds, so a handful of
// clients that connect at once (keep-alive ones stay where they land) is
// spread over the workers rather than taken whole by the first to wake,
// even when a sibling is not waiting in epoll at that instant. Past it
// the loop accepts in batches and only rotates: a pause per accept at any
// count made the thousandth client of a burst wait for a thousand pauses.
// net/http's accept (pool/worker/conns.go) does the same.
const (
	acceptOneUpTo = 32
	acceptPause   = 20 * time.Microsecond
)

// accept takes up to acceptBatch connections from lfd's queue (one while
// the loop holds few, see acceptOneUpTo). With siblings, it then puts the
// listener back at the tail of the socket's queue of exclusive waiters
// (see rotate), so the kernel offers the next connection to a sibling that
// waits first; only a loop that holds few pauses on a timer, since a
// connection in the queue is one whose request already waits.
func (l *Loop) accept(lfd int) {
	batch := acceptBatch
	if l.cfg.Siblings && l.open.Load() < acceptOneUpTo {
		batch = 1
	}
	n, full := 0, false
	for n < batch {
		more, f := l.acceptOne(lfd, n == 0)
		full = full || f
		if !more {
			break
		}
		n++
	}
	if n == 0 || !l.cfg.Siblings || !l.accepting {
		return
	}
	// Not a full loop: its siblings are full too, and a pause would cap
	// how fast it makes room in a flood.
	if open := l.open.Load(); batch == 1 && open > 1 && !full {
		l.stopAccepting()
		l.resumeAt = l.now + open*int64(acceptPause)
		return
	}
	l.rotate(lfd)
}

// rotate takes lfd out of the epoll set and puts it back. EPOLLEXCLUSIVE
// wakes the first epoll set in the socket's wait queue that has a thread
// waiting, and an epoll set joins that queue at its tail when the fd is
// added: so without this the first worker to start would take every
// connection while it is idle, and its siblings only what arrives while it
// is busy.
func (l *Loop) rotate(lfd int) {
	l.poll.Del(lfd)
	if err := l.poll.Add(lfd, poll.In|poll.Exclusive); err != nil {
		// Not accepting on one listener is worse than an unbalanced one:
		// take them all out and let the backoff put them back.
		l.log.Warn("epoll_ctl failed on a listener; retrying", "err", err)
		l.stopAccepting()
		l.acceptBackoff = min(max(2*l.acceptBackoff, 5*time.Millisecond), time.Second)
		l.resumeAt = l.now + int64(l.acceptBackoff)
	}
}

// acceptOne takes one connection; it reports whether another may follow,
// and whether the loop was full and made room for it. first says the
// listener's event is the news of a waiting client; later in a batch the
// queue may be empty, and a full loop then closes nothing.
func (l *Loop) acceptOne(lfd int, first bool) (more, full bool) {
	if !l.host.Acquire() {
		// Full: make room at once for the client at hand, as nginx does
		// (a sibling with room may have taken it; under a flood every
		// worker is full, and a tick's wait is what the flood wins).
		if !l.cfg.Evict || !first && l.waiting() == 0 || l.evictForWaiting(1) == 0 || !l.host.Acquire() {
			l.stopAccepting()
			l.paused = true
			return false, false
		}
		full = true
	}
	nfd, sa, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		l.host.Release()
		if err == unix.ECONNABORTED || err == unix.EINTR {
			return true, full
		}
		if err != unix.EAGAIN {
			// Out of fds or memory: the socket stays readable, so back off
			// (5ms doubling to 1s, as net/http does) instead of spinning.
			l.acceptBackoff = min(max(2*l.acceptBackoff, 5*time.Millisecond), time.Second)
			l.stopAccepting()
			l.resumeAt = l.now + int64(l.acceptBackoff)
			if l.now-l.acceptWarned >= int64(time.Second) {
				l.acceptWarned = l.now
				l.log.Warn("accept failed; retrying", "err", err, "retry_in", l.acceptBackoff.String())
			}
		}
		return false, full
	}
	l.acceptBackoff = 0
	var ip netip.Addr
	if l.cfg.PerIP {
		if ip = peerAddr(sa); ip.IsValid() && !l.host.Admit(ip) {
			// Over max_connections_per_ip: closed before a byte is read.
			unix.Close(nfd)
			l.host.Release()
			return true, full
		}
	}
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		// Inherited from hfork's own listening sockets, but not from one
		// handed over by systemd: an answer's head and its file must not
		// wait for the client's delayed ACK (Go's net package does this
		// for every connection too).
		unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	c := l.newConn()
	c.fd, c.since, c.deadline, c.fresh, c.ip = nfd, l.now, l.now+l.rht, true, ip
	c.pp = l.cfg.ProxyProtocol
	if l.needRemote {
		c.remote = sockaddrString(sa)
	}
	if err := l.poll.Add(nfd, poll.In); err != nil {
		unix.Close(nfd)
		l.host.Release()
		if ip.IsValid() {
			l.host.Leave(ip)
		}
		l.recycle(c)
		l.log.Warn("epoll_ctl failed", "err", err)
		return false, full
	}
	for nfd >= len(l.byFD) {
		l.byFD = append(l.byFD, make([]*conn, len(l.byFD)+64)...)
	}
	l.byFD[nfd] = c
	c.slot = len(l.list)
	l.list = append(l.list, c)
	l.queueReusable(c)
	l.open.Add(1)
	return true, full
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	return ""
}
