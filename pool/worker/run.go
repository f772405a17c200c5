package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// options is everything run needs. Main fills it from the process (the spec
// from the control pipe, the inherited sockets, NOTIFY_SOCKET, the
// signals); a test fills it with loopback listeners and channels.
type options struct {
	// Listener is the listener's resolved config: class, limits, timeouts.
	Listener hclconfig.Listener
	// Listeners are the sockets to serve, usually shared with sibling
	// workers. run closes them, and never shuts them down.
	Listeners []net.Listener
	// Handler serves every request: the routes, wrapped in the access log.
	Handler http.Handler
	// Logger receives the worker's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Notifier receives READY=1, the heartbeats, X_HFORK_RECYCLE=1 and
	// STOPPING=1; nil sends nothing.
	Notifier wire.Notifier
	// Signals drives the lifecycle: SIGTERM drains, SIGINT and SIGQUIT stop
	// fast, SIGUSR1 calls Reopen. Others are ignored.
	Signals <-chan os.Signal
	// Reopen reopens the access log; nil ignores SIGUSR1.
	Reopen func() error
	// IdleGrace is how long a drain leaves a connection idle before closing
	// it, for a request that may be on its way; 0 means Listener.Keepalive
	// (1s without keep-alive). See drain for why.
	IdleGrace time.Duration
	// Heartbeat is the heartbeat interval; 0 derives it from
	// Listener.Timeout (see heartbeatInterval).
	Heartbeat time.Duration
	// Certificates serve a TLS listener (the master updates them).
	// Required when Listener.TLS is set.
	Certificates *certset.Set
	// TicketSeed makes the session ticket keys (certset.InstallTickets);
	// nil: crypto/tls's own, per process.
	TicketSeed []byte
	// Fast is the routes' fast path: with it, an async worker on plain
	// HTTP serves from an event loop (see loop.go). AccessLog is the log
	// the loop writes to; Handler must already log to it.
	Fast      app.FastServer
	AccessLog *app.AccessLog
	// Table, when set, is what the worker answers with, built by
	// buildTable (Main): then Handler, Fast and AccessLog are ignored, the
	// worker takes swaps from Swaps, reopens and closes the access logs
	// of its tables itself, and Reopen is ignored.
	Table *table
	Swaps <-chan wire.Command
	// Started runs once, on a goroutine of its own, after READY=1, with
	// the count of the worker's open connections: Main gives back the
	// memory start-up took and watches it after (settle). nil: nothing.
	Started func(open func() int64)
	// Hurry ends a drain early (wire.Command.HurryMS): idle connections
	// close at once, the rest after the duration received. nil: never.
	Hurry <-chan time.Duration
	// h2Started, in tests, is told of each connection hfork's HTTP/2
	// server takes.
	h2Started func(*h2Conn)
	// h2SettingsTimeout, in tests, replaces h2SettingsAckTimeout.
	h2SettingsTimeout time.Duration
}

// workerState is where a worker is in its life.
type workerState int32

const (
	// stateStarting: building the server, not serving yet.
	stateStarting workerState = iota
	// stateReady: serving; READY=1 was sent.
	stateReady
	// stateDraining: not accepting; finishing what it holds.
	stateDraining
	// stateExited: run has returned.
	stateExited
)

func (s workerState) String() string {
	switch s {
	case stateStarting:
		return "starting"
	case stateReady:
		return "ready"
	case stateDraining:
		return "draining"
	case stateExited:
		return "exited"
	}
	return fmt.Sprintf("workerState(%d)", int32(s))
}

// worker is one running worker's serving state.
type worker struct {
	cfg      hclconfig.Listener
	limits   classLimits
	log      *slog.Logger
	notifier wire.Notifier
	reopen   func() error
	grace    time.Duration
	beat     time.Duration
	hurry    <-chan time.Duration
	swaps    <-chan wire.Command
	started  func(open func() int64)

	// tab is what requests are answered with (swap.go); tabs every table
	// still in use; swapMu orders swaps.
	tab    atomic.Pointer[table]
	tabs   tables
	swapMu sync.Mutex

	srv       *http.Server
	lns       []*gatedListener
	lnsClosed atomic.Bool
	serving   sync.WaitGroup
	serveErr  chan error

	connSem chan struct{} // open connections; nil is no cap
	// open counts tracked connections; siblings says other workers share
	// the sockets (Workers > 1), which is when accept balancing helps.
	open     atomic.Int64
	siblings bool
	threads  chan struct{} // handler calls at once; nil is no cap

	tls         *tls.Config   // nil for plain HTTP
	ticketSeed  []byte        // the session ticket keys' seed; nil: crypto/tls's own
	evicted     atomic.Uint64 // idle connections closed to make room
	evictLogged atomic.Int64  // unix nanos of the last eviction warning
	perIP       perIP         // max_connections_per_ip
	reuse       reuseQueue    // connections waiting for a request, for eviction

	track       tracker
	metrics     *reqMetrics
	maxRequests uint64 // 0 is never
	recycle     atomic.Bool
	recycleCh   chan struct{} // closed when served reaches maxRequests

	draining atomic.Bool
	// drainIdleClosed counts idle connections a drain closed (net/http's
	// and the event loop's), for the drain's report.
	drainIdleClosed atomic.Uint64
	drainCut        atomic.Bool // the drain reached its deadline and closes the rest

	// loop serves the listeners when the worker has an event loop; then
	// net/http serves only what the loop hands over.
	loop *evloop.Loop
	// h2s is hfork's HTTP/2 server, nil where net/http's serves h2.
	h2s *h2Server

	connsMu     sync.Mutex
	conns       map[*trackedConn]struct{}
	connsClosed bool          // a fast stop closed them; close newcomers at once
	connGone    chan struct{} // a connection was forgotten

	state atomic.Int32
}

// run serves opts.Listeners until a signal or ctx ends it:
//
//   - It sends READY=1 once every listener is being served, then a heartbeat
//     every interval (WATCHDOG=1 with the X_HFORK_* counters) until it
//     returns, and X_HFORK_RECYCLE=1 once when max_requests is reached.
//   - SIGTERM drains (see drain) and run returns nil.
//   - SIGINT or SIGQUIT, also during a drain, closes the listeners and every
//     connection at once and run returns nil.
//   - ctx ending (the master is gone) does the same and run returns the
//     context's cause.
//   - A listener failing for a reason other than run closing it stops fast
//     and run returns the error.
func run(ctx context.Context, opts options) error {
	w, err := newWorker(opts)
	if err != nil {
		return err
	}
	err = w.run(ctx, opts.Signals)
	if opts.Table != nil {
		// Lines of requests that finish later are dropped: the drain is over.
		if cerr := w.tabs.closeAccess(); cerr != nil {
			w.log.Error("access log close failed", "err", cerr)
		}
	}
	return err
}

func newWorker(opts options) (*worker, error) {
	limits, err := limitsFor(opts.Listener)
	if err != nil {
		return nil, err
	}
	if len(opts.Listeners) == 0 {
		return nil, errors.New("no listening sockets")
	}
	if opts.Handler == nil && opts.Table == nil {
		return nil, errors.New("no handler")
	}
	w := &worker{
		cfg:       opts.Listener,
		limits:    limits,
		log:       opts.Logger,
		notifier:  opts.Notifier,
		reopen:    opts.Reopen,
		grace:     opts.IdleGrace,
		beat:      opts.Heartbeat,
		hurry:     opts.Hurry,
		swaps:     opts.Swaps,
		started:   opts.Started,
		serveErr:  make(chan error, len(opts.Listeners)),
		connSem:   semaphore(limits.conns),
		siblings:  opts.Listener.Workers > 1,
		threads:   semaphore(limits.threads),
		recycleCh: make(chan struct{}),
		conns:     make(map[*trackedConn]struct{}),
		connGone:  make(chan struct{}, 1),
		metrics:   newReqMetrics(opts.Listener),
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.perIP.max = opts.Listener.MaxConnsPerIP
	if w.grace <= 0 {
		w.grace = time.Second
		if k := opts.Listener.Keepalive; k > 0 {
			w.grace = k
		}
	}
	if w.beat <= 0 {
		w.beat = heartbeatInterval(opts.Listener.Timeout)
	}
	if n := opts.Listener.MaxRequests; n > 0 {
		// Jitter spreads the recycling of workers started together.
		w.maxRequests = uint64(n + rand.IntN(max(opts.Listener.MaxRequestsJitter, 0)+1))
	}
	for _, l := range opts.Listeners {
		w.lns = append(w.lns, &gatedListener{Listener: l, w: w, done: make(chan struct{})})
	}
	if opts.Listener.TLS.Enabled() {
		if opts.Certificates == nil {
			return nil, errors.New("tls listener without certificates")
		}
		w.ticketSeed = opts.TicketSeed
		w.tls = w.tlsConfig(opts.Certificates)
		certset.InstallTickets(w.tls, w.ticketSeed)
	}
	t := opts.Table
	if t == nil {
		t = &table{cfg: opts.Listener, handler: opts.Handler, fast: opts.Fast, access: opts.AccessLog, deadline: limits.deadline}
		t.refs.Store(1)
	} else {
		w.reopen = w.tabs.reopen
		opts.Fast = t.fast
	}
	w.useTable(t)
	w.h2s = newH2Server(w, opts)
	w.srv = w.newServer()
	if useLoop(opts) {
		if w.loop, err = newLoop(w, t.fast, t.access); err != nil {
			return nil, fmt.Errorf("event loop: %w", err)
		}
		t.refs.Add(1)
		w.loop.SetRelease(t.release)
	}
	return w, nil
}

// useLoop reports whether a worker serves from the event loop: the async
// class, with event_loop on and a route the loop answers. Under
// proxy_protocol, TLS too: the loop takes the header off before the
// ClientHello.
func useLoop(opts options) bool {
	l := opts.Listener
	return opts.Fast != nil && l.Class == hclconfig.ClassAsync && l.EventLoop && opts.Fast.FastRoutes()
}

func (w *worker) setState(s workerState) {
	w.state.Store(int32(s))
	// The master logs every transition it sees; the worker's own view is
	// detail for debugging.
	w.log.Debug("worker state", "state", s.String())
}

// notify sends one datagram; a worker whose master cannot hear it is
// killed by that master, so a failure is logged and serving goes on.
func (w *worker) notify(state string) error {
	if w.notifier == nil {
		return nil
	}
	return w.notifier.Notify(state)
}

func (w *worker) run(ctx context.Context, signals <-chan os.Signal) error {
	w.state.Store(int32(stateStarting))
	if w.loop != nil {
		go func() {
			if err := w.loop.Run(); err != nil {
				w.serveErr <- err
			}
		}()
		// Ends when the loop closes its queue of handed-over connections.
		go w.srv.Serve(w.loop.Handoffs(w.lns[0].Addr()))
	}
	for _, l := range w.lns {
		if w.loop != nil {
			break
		}
		w.serving.Add(1)
		go func() {
			defer w.serving.Done()
			err := w.srv.Serve(l)
			if !w.lnsClosed.Load() {
				w.serveErr <- err
			}
		}()
	}
	if err := w.notify("READY=1"); err != nil {
		w.log.Error("worker cannot report ready", "err", err)
	}
	w.setState(stateReady)
	if w.started != nil {
		go w.started(w.openConns)
	}
	quit := make(chan struct{})
	var beats sync.WaitGroup
	beats.Go(func() { w.heartbeats(quit) })
	defer func() {
		close(quit)
		beats.Wait()
		w.setState(stateExited)
	}()
	w.log.Debug("worker serving", "sockets", len(w.lns), "event_loop", w.loop != nil, "http2", w.h2Server(),
		"max_requests", w.maxRequests, "heartbeat", w.beat.String())

	var drained, stopDrain chan struct{}
	stopFast := func(why string) {
		w.log.Info("worker stopping fast", "reason", why)
		if drained != nil {
			close(stopDrain)
			<-drained
		}
		w.stopNow()
	}
	for {
		select {
		case <-ctx.Done():
			stopFast(context.Cause(ctx).Error())
			return context.Cause(ctx)
		case err := <-w.serveErr:
			stopFast("listener failed")
			return fmt.Errorf("serve: %w", err)
		case <-drained:
			return nil
		case c := <-w.swaps:
			w.swap(c)
		case sig := <-signals:
			switch sig {
			case syscall.SIGTERM:
				if drained == nil {
					drained, stopDrain = make(chan struct{}), make(chan struct{})
					go func() {
						defer close(drained)
						w.drain(stopDrain)
					}()
				}
			case syscall.SIGINT, syscall.SIGQUIT:
				stopFast(sig.String())
				return nil
			case syscall.SIGUSR1:
				if w.reopen != nil {
					if err := w.reopen(); err != nil {
						w.log.Error("access log reopen failed", "err", err)
					} else {
						w.log.Info("access log reopened")
					}
				}
			}
		}
	}
}

// heartbeats reports the worker's load every interval, and the recycle
// request as soon as max_requests is reached, until quit is closed.
func (w *worker) heartbeats(quit <-chan struct{}) {
	t := time.NewTicker(w.beat)
	defer t.Stop()
	recycle := w.recycleCh
	failing := false
	for {
		var err error
		select {
		case <-quit:
			return
		case <-recycle:
			recycle = nil
			w.log.Info("worker reached max_requests; asking to be replaced", "max_requests", w.maxRequests)
			err = w.notify(wire.KeyRecycle + "=1")
		case now := <-t.C:
			err = w.notify(w.heartbeat(now))
		}
		// One line when the master stops hearing us and one when it hears
		// again, not one per beat.
		if err != nil && !failing {
			w.log.Warn("worker heartbeat failed", "err", err)
		} else if err == nil && failing {
			w.log.Info("worker heartbeat restored")
		}
		failing = err != nil
	}
}
