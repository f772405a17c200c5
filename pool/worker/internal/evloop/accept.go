package evloop

import (
	"fmt"
	"net"
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

// accept takes one connection: accepting one per wake-up leaves the
// others in the queue to sibling workers that are less busy.
func (l *Loop) accept(lfd int) {
	if !l.host.Acquire() {
		l.stopAccepting()
		l.paused = true
		return
	}
	nfd, sa, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		l.host.Release()
		if err != unix.EAGAIN && err != unix.ECONNABORTED && err != unix.EINTR {
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
		return
	}
	l.acceptBackoff = 0
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		// Inherited from hfork's own listening sockets, but not from one
		// handed over by systemd: an answer's head and its file must not
		// wait for the client's delayed ACK (Go's net package does this
		// for every connection too).
		unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	c := l.newConn()
	c.fd, c.since, c.deadline, c.fresh = nfd, l.now, l.now+l.rht, true
	c.pp = l.cfg.ProxyProtocol
	if l.needRemote {
		c.remote = sockaddrString(sa)
	}
	if err := l.poll.Add(nfd, poll.In); err != nil {
		unix.Close(nfd)
		l.host.Release()
		l.log.Warn("epoll_ctl failed", "err", err)
		return
	}
	for nfd >= len(l.byFD) {
		l.byFD = append(l.byFD, make([]*conn, len(l.byFD)+64)...)
	}
	l.byFD[nfd] = c
	c.slot = len(l.list)
	l.list = append(l.list, c)
	n := l.open.Add(1)
	if l.cfg.Siblings && n > 1 {
		// Accept balancing (see Config.Siblings): a worker that holds
		// connections leaves the next one to a less busy sibling for a
		// moment, or a burst of new clients would all land on whichever
		// worker woke first.
		l.stopAccepting()
		l.resumeAt = l.now + min(n*int64(l.cfg.AcceptPause), int64(l.cfg.AcceptPauseMax))
	}
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
