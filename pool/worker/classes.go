package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// classLimits is what a worker class means for serving.
type classLimits struct {
	// conns caps the connections a worker holds open; 0 is no cap.
	conns int
	// threads caps the handler calls running at once; 0 is no cap.
	threads int
	// keepAlive and idle: whether a connection serves more than one
	// request, and how long it may wait idle for the next.
	keepAlive bool
	idle      time.Duration
	// deadline is every request's context deadline; 0 is none.
	deadline time.Duration
	// evict: at the connection cap, close the quietest idle connection
	// for a client waiting in the accept queue (see evict.go).
	evict bool
}

// limitsFor maps a listener's class to its limits:
//
//	sync    one connection at a time, one request per connection: the
//	        listener accepts the next connection only after the previous
//	        one is closed, so a slow request holds the whole worker, as in
//	        gunicorn's sync worker, and a client that trickles its headers
//	        holds it until read_header_timeout.
//	thread  at most threads requests in flight, at most worker_connections
//	        connections, keep-alive; at the cap, idle connections make room
//	        for new ones.
//	async   a goroutine per connection up to worker_connections, keep-alive,
//	        and each request's context ends after timeout; at the cap, idle
//	        connections make room for new ones.
func limitsFor(l hclconfig.Listener) (classLimits, error) {
	keep := l.Keepalive > 0
	switch l.Class {
	case hclconfig.ClassSync:
		return classLimits{conns: 1}, nil
	case hclconfig.ClassThread:
		return classLimits{conns: max(l.WorkerConnections, 0), threads: max(l.Threads, 1), keepAlive: keep, idle: l.Keepalive, evict: true}, nil
	case hclconfig.ClassAsync:
		return classLimits{conns: max(l.WorkerConnections, 0), keepAlive: keep, idle: l.Keepalive, deadline: deadlineFor(l), evict: true}, nil
	default:
		return classLimits{}, fmt.Errorf("class %q is not a built-in worker class", l.Class)
	}
}

// deadlineFor is the async request deadline. Only the proxy waits on
// anything but its client, and only it watches its request's context;
// respond, static and redirect finish on their own (write_timeout bounds a
// slow reader). So a listener without a proxy route skips the per-request
// context and timer, which cost about a tenth of a respond request.
func deadlineFor(l hclconfig.Listener) time.Duration {
	for _, r := range l.Routes {
		if r.App == hclconfig.AppProxy {
			return max(l.Timeout, 0)
		}
	}
	return 0
}

// semaphore returns a channel semaphore of n slots, or nil for no limit.
func semaphore(n int) chan struct{} {
	if n <= 0 {
		return nil
	}
	return make(chan struct{}, n)
}

// requestDeadline is an async request's context. It ends at its deadline as
// one from context.WithDeadline would, but an upgrade can lift the
// deadline: a WebSocket must outlive the timeout that applied to its
// handshake, and a proxy closes an upgraded stream when the request's
// context ends.
//
// Err reports context.DeadlineExceeded once the deadline passed; contexts
// derived from it see context.Canceled with context.DeadlineExceeded as
// their context.Cause.
type requestDeadline struct {
	context.Context
	cancel   context.CancelCauseFunc
	deadline time.Time
	timer    *time.Timer
	lifted   atomic.Bool
}

func newRequestDeadline(parent context.Context, d time.Duration) *requestDeadline {
	ctx, cancel := context.WithCancelCause(parent)
	rd := &requestDeadline{Context: ctx, cancel: cancel, deadline: time.Now().Add(d)}
	if pd, ok := parent.Deadline(); ok && pd.Before(rd.deadline) {
		rd.deadline = pd
	}
	rd.timer = time.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return rd
}

func (rd *requestDeadline) Deadline() (time.Time, bool) {
	if rd.lifted.Load() {
		return rd.Context.Deadline()
	}
	return rd.deadline, true
}

func (rd *requestDeadline) Err() error {
	err := rd.Context.Err()
	if err != nil && context.Cause(rd.Context) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}

// lift stops the deadline; the context still ends with its parent.
func (rd *requestDeadline) lift() {
	rd.lifted.Store(true)
	rd.timer.Stop()
}

// end releases the timer once the request is over.
func (rd *requestDeadline) end() {
	rd.timer.Stop()
	rd.cancel(context.Canceled)
}
