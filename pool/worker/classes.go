package worker

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
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
	// oneAtATime (sync): accept only while no request holds the handler
	// slot, and read a request's head and the first bodyBuffer bytes of
	// its body before it takes the slot.
	oneAtATime bool
	bodyBuffer int64
}

// The sync class holds its one handler slot only for a request whose
// head has arrived whole (and whose body has, up to syncBodyBuffer), so
// that clients trickling their heads (slowloris) or their bodies hold a
// goroutine each, not the worker. Up to syncConns connections (what
// hclconfig leaves in a sync listener's worker_connections) may be
// reading at once; a worker at that cap evicts as the other classes do.
// The worker accepts only while its slot is free: a busy sync worker
// leaves new connections to its siblings, as gunicorn's does.
const (
	syncConns      = 1000
	syncBodyBuffer = 64 << 10
)

// limitsFor maps a listener's class to its limits:
//
//	sync    one request at a time, one request per connection: a slow
//	        request holds the whole worker, as in gunicorn's sync worker,
//	        and the worker accepts only while it is free; but a request
//	        takes the worker only once its head (and the start of its
//	        body) arrived, so clients that trickle them cannot block it.
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
		return classLimits{conns: cmp.Or(l.WorkerConnections, syncConns), threads: 1, evict: true, oneAtATime: true, bodyBuffer: syncBodyBuffer}, nil
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

// waitFree waits until no request holds the handler slot of a
// one-at-a-time worker, or done closes; it reports false for done.
func (w *worker) waitFree(done <-chan struct{}) bool {
	select {
	case w.threads <- struct{}{}:
		<-w.threads
		return true
	case <-done:
		return false
	}
}

// bufferBody reads the first w.limits.bodyBuffer bytes of r's body
// before r takes the worker's slot, so a client that trickles its body
// holds only its own goroutine for them; the rest of a larger body is
// read as the handler asks, and a read's error (the end of the body
// included) is the one the handler meets. "Expect: 100-continue" bodies
// are not read: the client waits for the handler's go-ahead; nor is one
// whose length is over max_body_bytes, which the 413 refuses unread.
func (w *worker) bufferBody(r *http.Request) {
	maxBody := w.cfg.MaxBodyBytes
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || r.Header.Get("Expect") != "" ||
		maxBody > 0 && r.ContentLength > maxBody {
		return
	}
	n := w.limits.bodyBuffer
	if r.ContentLength > 0 {
		n = min(n, r.ContentLength)
	}
	if maxBody > 0 {
		n = min(n, maxBody+1) // one past tells the limit it was passed
	}
	buf := make([]byte, n)
	k := 0
	var err error
	for k < len(buf) && err == nil {
		var m int
		m, err = r.Body.Read(buf[k:])
		k += m
	}
	rest := io.Reader(r.Body)
	if err != nil {
		rest = errReader{err}
	}
	r.Body = bufferedBody{Reader: io.MultiReader(bytes.NewReader(buf[:k]), rest), Closer: r.Body}
}

// bufferedBody is a request body whose start was read ahead.
type bufferedBody struct {
	io.Reader
	io.Closer
}

// errReader ends a buffered body as the body's own read ended.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
