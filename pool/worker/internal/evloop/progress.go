package evloop

import (
	"time"

	"golang.org/x/sys/unix"
)

// A drain lets a transfer that is still moving run past graceful_timeout
// (up to shutdown_timeout, the worker's business); one that has moved no
// byte for StallWindow is stalled and goes at graceful_timeout like an
// idle connection. Whether bytes move is the kernel's word (tcp_info),
// so a sendfile of any size, a proxied stream and a write blocked on a
// slow reader all count, without a hook on the hot path.
const (
	// StallWindow is how long a transfer may move nothing and still count
	// as moving.
	StallWindow = time.Second
	// StallSample is how often a drain reads the counters.
	StallSample = 200 * time.Millisecond
)

// Moved is a number that grows whenever fd's connection moves bytes: the
// bytes the peer acknowledged plus those received, from TCP_INFO. It is
// 0 for a socket that is not TCP (a unix socket), whose callers add their
// own count.
func Moved(fd int) int64 {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0
	}
	return int64(ti.Bytes_acked + ti.Bytes_received)
}

// moved is c's movement counter: the kernel's for TCP, plus what the loop
// wrote to it itself (all there is for a unix socket), files included.
func (c *conn) moved() int64 { return Moved(c.fd) + c.fileAt + c.wrote }

// Progress is a connection's movement as a drain samples it.
type Progress struct {
	moved   int64
	at      int64 // unix nanos of the last reading that moved
	sampled bool
}

// Observe takes a reading v at now (unix nanos).
func (p *Progress) Observe(v, now int64) {
	if !p.sampled || v != p.moved {
		p.moved, p.at, p.sampled = v, now, true
	}
}

// Stalled reports whether nothing moved for StallWindow up to now; a
// connection never sampled is stalled.
func (p *Progress) Stalled(now int64) bool {
	return !p.sampled || now-p.at >= int64(StallWindow)
}

// busy reports whether c is answering: an answer or a file waits for the
// socket, an upstream is answering, or a closing connection's last answer
// is still in the send buffer.
func (c *conn) busy() bool {
	switch c.state {
	case connWriting, connProxy:
		return true
	case connLinger:
		return unsent(c.fd) > 0
	}
	return c.file >= 0 || c.px != nil
}

// PastGrace tells a draining loop that graceful_timeout has passed: it
// closes every connection that is not moving an answer now, and each
// answer that stalls from then on.
func (l *Loop) PastGrace() { l.command(cmdPastGrace) }

// Cut is how many connections the loop closed past graceful_timeout with
// an answer unfinished or a request unanswered.
func (l *Loop) Cut() int64 { return l.cut.Load() }

// LateCut is how many of the answers still moving at graceful_timeout
// the loop closed later, when they stalled.
func (l *Loop) LateCut() int64 { return l.lateCut.Load() }

// Moving is how many answers were still moving when graceful_timeout
// passed.
func (l *Loop) Moving() int64 { return l.moving.Load() }

// Busy is how many connections were answering at the loop's last look,
// every StallSample: the answers in flight a heartbeat reports, and what
// a drain waits for.
func (l *Loop) Busy() int64 { return l.busyN.Load() }

// sampleDrain counts the busy connections every StallSample; while
// draining it reads their progress too, and past graceful_timeout it
// closes what is not moving.
func (l *Loop) sampleDrain() {
	if l.now-l.lastSample < int64(StallSample) {
		return
	}
	l.lastSample = l.now
	if !l.draining {
		busy := int64(0)
		for _, c := range l.list {
			if c.busy() {
				busy++
			}
		}
		l.busyN.Store(busy)
		return
	}
	busy := int64(0)
	for _, c := range l.list {
		if c.busy() {
			busy++
			c.prog.Observe(c.moved(), l.now)
		}
	}
	l.busyN.Store(busy)
	if l.pastGrace {
		n := l.cut.Load()
		l.cutStalled()
		l.lateCut.Add(l.cut.Load() - n)
	}
}

// cutStalled closes every connection that is not a busy one still moving.
// A lingering connection whose answer has left is closed without counting:
// nothing of it is lost. It reports how many moving ones it spared.
func (l *Loop) cutStalled() int64 {
	var spared int64
	for i := 0; i < len(l.list); {
		c := l.list[i]
		switch {
		case c.busy() && !c.prog.Stalled(l.now):
			spared++
			i++
			continue
		case c.state == connLinger && unsent(c.fd) == 0:
		case c.state == connIdle:
			l.host.DrainIdleClosed()
		default:
			l.cut.Add(1)
		}
		l.close(c)
	}
	return spared
}

// pastGraceNow is cmdPastGrace: it samples once more and cuts.
func (l *Loop) pastGraceNow() {
	if l.pastGrace {
		return
	}
	l.pastGrace = true
	for _, c := range l.list {
		if c.busy() {
			c.prog.Observe(c.moved(), l.now)
		}
	}
	l.moving.Store(l.cutStalled())
}

// Hurry makes a draining loop close its idle connections at once: its
// generation is over max_draining_generations.
func (l *Loop) Hurry() { l.command(cmdHurry) }
