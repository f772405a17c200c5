package worker

import (
	"net"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// The async class's plain-HTTP listeners are served by an event loop
// (package internal/evloop) when event_loop is on. The worker gives it
// its config and stays the owner of what the loop shares with net/http:
// the connection slots, the request count, the connections handed over,
// and the eviction count. loopHost is that seam.

// newLoop makes the worker's event loop for its listeners.
func newLoop(w *worker, fast app.FastServer, access *app.AccessLog) (*evloop.Loop, error) {
	rht := w.cfg.ReadHeaderTimeout
	if rht <= 0 {
		rht = fallbackReadHeaderTimeout
	}
	if rt := w.cfg.ReadTimeout; rt > 0 && rt < rht {
		rht = rt
	}
	lns := make([]net.Listener, len(w.lns))
	for i, l := range w.lns {
		lns[i] = l.Listener
	}
	return evloop.New(evloop.Config{
		Listeners:         lns,
		Fast:              fast,
		Access:            access,
		Trust:             app.NewTrust(w.cfg.TrustedProxies),
		ProxyProtocol:     w.cfg.ProxyProtocol,
		Log:               w.log,
		ReadHeaderTimeout: rht,
		Idle:              w.limits.idle,
		WriteTimeout:      w.cfg.WriteTimeout,
		Deadline:          w.limits.deadline,
		Grace:             w.grace,
		MaxHeaderBytes:    w.cfg.MaxHeaderBytes,
		KeepAlive:         w.limits.keepAlive,
		Evict:             w.limits.evict,
		Siblings:          w.siblings,
		AcceptPause:       acceptPause,
		AcceptPauseMax:    acceptPauseMax,
	}, loopHost{w})
}

// loopHost is the worker as its event loop sees it.
type loopHost struct{ w *worker }

func (h loopHost) Acquire() bool {
	if h.w.connSem == nil {
		return true
	}
	select {
	case h.w.connSem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h loopHost) Release()              { h.w.release() }
func (h loopHost) Route(path string) int { return h.w.metrics.route(path) }
func (h loopHost) Served(route, status int, bytes int64, began int64) {
	h.w.servedRoute(route, status, bytes, began)
}
func (h loopHost) DrainIdleClosed()          { h.w.drainIdleClosed.Add(1) }
func (h loopHost) Adopt(c net.Conn) net.Conn { return h.w.adopt(c) }
func (h loopHost) Evicted(now time.Time)     { h.w.noteEviction(now) }
