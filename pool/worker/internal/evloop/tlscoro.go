package evloop

import (
	"iter"
	"sync/atomic"
)

// hsCoro is a coroutine that runs handshakes one after another: the stack
// its first handshake grew serves the next ones, where a new goroutine's
// would grow to a handshake's depth again each time (copying it cost 3-4%
// of a worker's CPU under tls_handshake).
type hsCoro struct {
	next   func() (struct{}, bool)
	stop   func()
	t      *tlsConn // the handshake's connection; nil once it returned
	err    error
	idleAt int64 // when it went idle, on the loop's clock
}

func (co *hsCoro) run(yield func(struct{}) bool) {
	for {
		t := co.t
		t.io.yield = yield
		co.err = t.tc.Handshake()
		t.io.yield = nil
		co.t = nil
		if !yield(struct{}{}) { // idle until the next handshake
			return
		}
	}
}

// hsPool keeps idle coroutines while handshakes come, each for idleFor
// after its last handshake: a worker that saw a burst of handshakes does
// not keep their stacks once the burst is over.
type hsPool struct {
	idle    []*hsCoro // the most recently used last
	idleFor int64
	// live counts the coroutines that exist, busy those running a
	// handshake: the loop writes them, a test may read them.
	live, busy atomic.Int64
}

// hsKept bounds the idle coroutines kept, each with its stack.
const hsKept = 16

func (l *Loop) takeCoro() *hsCoro {
	p := &l.hsPool
	p.busy.Add(1)
	if n := len(p.idle); n > 0 {
		co := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		return co
	}
	co := &hsCoro{}
	co.next, co.stop = iter.Pull(co.run)
	p.live.Add(1)
	return co
}

// putCoro takes back a coroutine whose handshake returned.
func (l *Loop) putCoro(co *hsCoro) {
	p := &l.hsPool
	p.busy.Add(-1)
	if len(p.idle) >= hsKept {
		l.stopCoro(co)
		return
	}
	co.idleAt = l.now
	p.idle = append(p.idle, co)
}

// dropCoro ends a coroutine whose handshake did not return.
func (l *Loop) dropCoro(co *hsCoro) {
	l.hsPool.busy.Add(-1)
	l.stopCoro(co)
}

func (l *Loop) stopCoro(co *hsCoro) {
	co.stop()
	l.hsPool.live.Add(-1)
}

// trimCoros ends the coroutines idle for idleFor, or all of them (now)
// when the loop ends.
func (l *Loop) trimCoros(now bool) {
	p := &l.hsPool
	n := 0
	for n < len(p.idle) && (now || l.now-p.idle[n].idleAt >= p.idleFor) {
		l.stopCoro(p.idle[n])
		n++
	}
	if n == 0 {
		return
	}
	k := copy(p.idle, p.idle[n:])
	clear(p.idle[k:])
	p.idle = p.idle[:k]
	if !now {
		l.log.Debug("idle tls handshake coroutines ended", "ended", n, "kept", k)
	}
}
