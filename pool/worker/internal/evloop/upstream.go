package evloop

import (
	"net/http"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/h1"
	"github.com/hfork/hfork/pool/worker/internal/poll"
	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"github.com/hfork/hfork/pool/worker/internal/upstream"
	"golang.org/x/sys/unix"
)

// The loop's upstream pool: keep-alive connections to a proxy route's
// upstreams, in the loop's own epoll set, reused most recently used
// first, and retired when idle for upIdleTimeout or when they say
// anything while idle. A burst may leave more than upIdleMax idle: those
// beyond it are kept for upIdleExtra, so that a thousand exchanges in
// flight do not close and dial connections by the hundred each time a
// batch of answers ends before the next requests come; then the least
// recently used go.

// Upstream limits, as the proxy app's transport has them; connect_timeout
// and read_timeout are the route's.
const (
	upIdleTimeout = 90 * time.Second
	upIdleMax     = 256
	upIdleExtra   = 5 * time.Second
	// upIdleBurst bounds the idle connections to one upstream a burst
	// leaves.
	upIdleBurst = 8192
	upMaxHead   = 64 << 10
)

// upState is where an upstream connection is: upConnecting, upSending a
// request, waiting for the answer's upHead, passing its upBody on, then
// upIdle in the pool or upClosed.
type upState int

const (
	upConnecting upState = iota
	upSending
	upHead
	upBody
	upIdle
	upClosed
)

func (s upState) String() string {
	switch s {
	case upConnecting:
		return "connecting"
	case upSending:
		return "sending"
	case upHead:
		return "head"
	case upBody:
		return "body"
	case upIdle:
		return "idle"
	case upClosed:
		return "closed"
	}
	return "upState(?)"
}

// frame is how an upstream answer's body ends.
type frame int

const (
	frameNone    frame = iota // no body
	frameLength               // Content-Length
	frameChunked              // chunked
	frameClose                // the upstream closes
)

func (f frame) String() string {
	switch f {
	case frameNone:
		return "none"
	case frameLength:
		return "length"
	case frameChunked:
		return "chunked"
	case frameClose:
		return "close"
	}
	return "frame(?)"
}

// upConn is a connection to an upstream.
type upConn struct {
	fd     int
	id     int // the upstream's Member.ID
	state  upState
	reused bool // served an exchange before this one
	ex     *exchange
	out    []byte // the request being written
	outAt  int    // how much of out is written
	in     []byte // an answer's head so far
	paused bool   // not reading: the client has not taken what came
	events uint32 // what epoll reports for it
	// detached: out of the epoll set while paused, after a hang-up.
	detached bool
	since    int64 // idle since
	dueBy    int64 // connecting: connect_timeout ends
	slot     int   // in Loop.ups
	keep     bool  // the answer allows reuse
	frame    frame
	left     int64 // frameLength: bytes to go
	chunks   h1.ChunkScanner
}

// upstreamConn returns a pooled connection to m, or a new one being
// dialed; nil when a socket cannot even be made or the connect failed at
// once.
func (l *Loop) upstreamConn(m *upstream.Member, connect time.Duration) *upConn {
	for m.ID < len(l.upIdle) && len(l.upIdle[m.ID]) > 0 {
		idle := l.upIdle[m.ID]
		u := idle[len(idle)-1]
		l.upIdle[m.ID] = idle[:len(idle)-1]
		// An idle connection must have nothing to say: a close, or bytes
		// after its last answer, may be waiting in this very pass, ahead
		// of the epoll event that would retire it.
		if _, err := rawsys.Peek(u.fd); err != unix.EAGAIN {
			u.state = upHead // not idle any more: dropUp need not look for it
			l.dropUp(u)
			continue
		}
		u.reused = true
		return u
	}
	return l.dial(m, connect)
}

// dial connects to m without waiting; a unix socket's connect either
// succeeds or fails at once (EAGAIN: its backlog is full).
func (l *Loop) dial(m *upstream.Member, connect time.Duration) *upConn {
	family := unix.AF_INET
	switch m.Sockaddr.(type) {
	case *unix.SockaddrInet6:
		family = unix.AF_INET6
	case *unix.SockaddrUnix:
		family = unix.AF_UNIX
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if app.OutOfFDs(err) {
			// The worker's trouble, not the upstream's: send answers 503.
			l.fds.Note(l.log, "upstream connection", err)
			l.outOfFDs = true
		}
		l.dialErr = err
		return nil
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	u := &upConn{fd: fd, id: m.ID, state: upConnecting, events: poll.Out, dueBy: l.now + int64(connect)}
	err = unix.Connect(fd, m.Sockaddr)
	if err != nil && err != unix.EINPROGRESS {
		rawsys.Close(fd)
		l.dialErr = err
		return nil
	}
	if err := l.poll.Add(fd, poll.Out); err != nil {
		rawsys.Close(fd)
		l.dialErr = err
		return nil
	}
	for fd >= len(l.upByFD) {
		l.upByFD = append(l.upByFD, make([]*upConn, len(l.upByFD)+64)...)
	}
	l.upByFD[fd] = u
	u.slot = len(l.ups)
	l.ups = append(l.ups, u)
	return u
}

// send starts ex on u; a nil u (the dial failed: l.dialErr) counts
// against ex's upstream, and ex goes to another or fails.
func (l *Loop) send(ex *exchange, u *upConn) {
	if u == nil {
		if l.outOfFDs {
			// No socket to try any upstream with: nothing to mark or retry.
			l.outOfFDs = false
			l.proxyFailed(ex, http.StatusServiceUnavailable)
			return
		}
		why := "connect: " + l.dialErr.Error()
		ex.px.Group.Failed(ex.up, why)
		if l.retry(ex, why) {
			return
		}
		l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", why)
		l.proxyFailed(ex, http.StatusBadGateway)
		return
	}
	ex.via = u
	u.ex = ex
	u.out, u.outAt = append(u.out[:0], ex.req...), 0
	u.in = u.in[:0]
	u.paused = false
	if u.state == upConnecting {
		return // EPOLLOUT says when
	}
	u.state = upSending
	l.upWrite(u)
}

func (l *Loop) upConnOf(fd int) *upConn {
	if fd < len(l.upByFD) {
		return l.upByFD[fd]
	}
	return nil
}

// upEvent handles epoll's news about an upstream connection.
func (l *Loop) upEvent(u *upConn, events uint32) {
	switch u.state {
	case upConnecting:
		errno, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil || errno != 0 {
			if err == nil {
				err = unix.Errno(errno)
			}
			l.upFailed(u, false, "connect: "+err.Error())
			return
		}
		u.state = upSending
		l.upWrite(u)
	case upSending:
		l.upWrite(u)
	case upIdle:
		// An idle connection has nothing to say: this is its close.
		l.dropUp(u)
	default:
		if u.paused {
			// A hang-up while the client is slow: take it out of the
			// set (it would be reported again and again); resumeProxy
			// puts it back and reads what it says.
			l.poll.Del(u.fd)
			u.detached = true
			return
		}
		l.upRead(u)
	}
}

func (l *Loop) upWrite(u *upConn) {
	n, st := write(u.fd, u.out[u.outAt:], unix.MSG_NOSIGNAL)
	u.outAt += n
	switch st {
	case ioAgain:
		l.upEvents(u, poll.Out)
		return
	case ioClosed:
		l.upFailed(u, true, "connection closed while sending")
		return
	}
	u.state = upHead
	l.upEvents(u, poll.In)
}

// upEvents changes what epoll reports for u, if it differs.
func (l *Loop) upEvents(u *upConn, events uint32) {
	if u.events != events {
		u.events = events
		l.setEvents(u.fd, events)
	}
}

// setEvents changes what epoll reports for fd.
func (l *Loop) setEvents(fd int, events uint32) {
	l.poll.Mod(fd, events)
}

func (l *Loop) upIdleOf(id int) []*upConn {
	for id >= len(l.upIdle) {
		l.upIdle = append(l.upIdle, nil)
	}
	return l.upIdle[id]
}

// dropUp closes an upstream connection.
func (l *Loop) dropUp(u *upConn) {
	if u.state == upIdle {
		idle := l.upIdleOf(u.id)
		for i, x := range idle {
			if x == u {
				l.upIdle[u.id] = append(idle[:i], idle[i+1:]...)
				break
			}
		}
	}
	if u.ex != nil && u.ex.via == u {
		u.ex.via = nil
	}
	u.ex = nil
	l.poll.Del(u.fd)
	rawsys.Close(u.fd)
	l.upByFD[u.fd] = nil
	last := l.ups[len(l.ups)-1]
	l.ups[u.slot] = last
	last.slot = u.slot
	l.ups[len(l.ups)-1] = nil
	l.ups = l.ups[:len(l.ups)-1]
	u.state = upClosed
}

// sweepUpstreams applies the upstream timeouts: connect_timeout (then
// another upstream may be tried: nothing was sent), read_timeout for the
// answer's head and between reads of its body (not while the client is
// the slow one), and the request timeout.
func (l *Loop) sweepUpstreams() {
	l.trimIdleUpstreams()
	for i := 0; i < len(l.ups); {
		u := l.ups[i]
		ex := u.ex
		switch {
		case u.state == upIdle && l.now-u.since >= int64(upIdleTimeout):
			l.dropUp(u)
			continue
		case ex != nil && u.state == upConnecting && l.now >= u.dueBy:
			why := "connect timeout"
			ex.px.Group.Failed(ex.up, why)
			l.dropUp(u)
			if !l.retry(ex, why) {
				l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", why)
				l.proxyFailed(ex, http.StatusGatewayTimeout)
			}
			continue
		case ex != nil && ex.deadline != 0 && l.now >= ex.deadline && ex.sentHead:
			l.log.Warn("upstream failed mid-answer", "upstream", ex.up.Name, "err", "request timeout")
			l.proxyAbort(u)
			continue
		case ex != nil && !ex.sentHead && l.now >= ex.readBy:
			why := "read timeout awaiting the answer"
			if ex.deadline != 0 && l.now >= ex.deadline {
				why = "request timeout"
			}
			ex.px.Group.Failed(ex.up, why)
			l.log.Warn("upstream failed", "upstream", ex.up.Name, "err", why)
			l.upFailedCode(u, http.StatusGatewayTimeout)
			continue
		case ex != nil && ex.sentHead && !u.paused && l.now >= ex.readBy:
			ex.px.Group.Failed(ex.up, "read timeout")
			l.log.Warn("upstream failed mid-answer", "upstream", ex.up.Name, "err", "read timeout")
			l.proxyAbort(u)
			continue
		}
		i++
	}
}

// trimIdleUpstreams closes the idle connections beyond l.upKeep of each
// upstream that have been idle for l.upExtra, least recently used (first
// in the list) first.
func (l *Loop) trimIdleUpstreams() {
	for id, idle := range l.upIdle {
		n := 0
		for n < len(idle)-l.upKeep && l.now-idle[n].since >= l.upExtra {
			n++
		}
		if n == 0 {
			continue
		}
		for _, u := range idle[:n] {
			u.state = upHead // out of the list already: dropUp need not look
			l.dropUp(u)
		}
		rest := copy(idle, idle[n:])
		clear(idle[rest:])
		l.upIdle[id] = idle[:rest]
	}
}
