package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// A swap (wire.Command.Swap) changes what a running worker answers with,
// with no new process: the routes, hosts, headers, error pages,
// compression, the access log, max_body_bytes and redirect_https. The
// worker builds a table from the new listener config exactly as at boot,
// and installs it between requests:
//
//   - net/http reads the table once per request (ServeHTTP), so a request
//     in flight, an upgraded stream included, ends under the table it
//     began with;
//   - the event loop reads it once per request too, and a proxied request
//     there keeps its table until it ends (evloop.Table).
//
// A table counts the requests using it; the one replaced is closed (its
// proxies' probes, and its access log unless the new table took the same
// one over) when the last of them ends. The worker answers with
// wire.KeySwap once the new table serves, or with why it refused: the old
// one serves on.

// table is what a worker answers requests with, built from one listener
// config.
type table struct {
	cfg      hclconfig.Listener
	handler  http.Handler // the routes behind the guards, the access log and the client handler
	fast     app.FastServer
	access   *app.AccessLog
	routes   http.Handler  // app.New's, closed with the table
	deadline time.Duration // the async request deadline for these routes (deadlineFor)

	// ownsAccess: closing the table closes access; false once a later
	// table took the same log over.
	ownsAccess atomic.Bool
	// refs counts the requests that use the table, one for the event loop
	// while it uses it, and one while it is the worker's current table.
	refs    atomic.Int64
	onClose func(*table)
}

// buildTable builds the table for l, as a worker does at boot. prev, when
// set, is the table serving now: an access log of the same settings is
// taken over rather than opened twice.
func buildTable(l hclconfig.Listener, log *slog.Logger, prev *table) (*table, error) {
	limits, err := limitsFor(l)
	if err != nil {
		return nil, err
	}
	h, err := app.New(l, log)
	if err != nil {
		return nil, err
	}
	t := &table{cfg: l, routes: h, deadline: limits.deadline}
	if prev != nil && prev.access != nil && prev.cfg.AccessLog == l.AccessLog {
		t.access = prev.access
	} else if t.access, err = app.OpenAccessLog(l.AccessLog); err != nil {
		app.Close(h)
		return nil, err
	}
	t.access.SetLogger(log)
	t.ownsAccess.Store(true)
	t.handler = app.ClientHandler(l, t.access.Wrap(handler(l, h)))
	if fs, ok := h.(app.FastServer); ok {
		t.fast = fs
	}
	t.refs.Store(1)
	return t, nil
}

// release drops one use of t; the last closes it.
func (t *table) release() {
	if t.refs.Add(-1) == 0 {
		t.close()
	}
}

func (t *table) close() {
	app.Close(t.routes)
	if t.ownsAccess.Load() {
		t.access.Close()
	}
	if t.onClose != nil {
		t.onClose(t)
	}
}

// tables is every table of a worker still in use, for SIGUSR1 (reopen
// every access log a request still writes to) and for the worker's exit.
type tables struct {
	mu  sync.Mutex
	set map[*table]struct{}
}

func (ts *tables) add(t *table) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.set == nil {
		ts.set = map[*table]struct{}{}
	}
	ts.set[t] = struct{}{}
	t.onClose = ts.remove
}

func (ts *tables) remove(t *table) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.set, t)
}

// reopen reopens the access log of every table that owns one.
func (ts *tables) reopen() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var errs []error
	for t := range ts.set {
		if t.ownsAccess.Load() {
			errs = append(errs, t.access.Reopen())
		}
	}
	return errors.Join(errs...)
}

// closeAccess flushes and closes every access log still open, at exit.
func (ts *tables) closeAccess() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var errs []error
	for t := range ts.set {
		if t.ownsAccess.Load() {
			errs = append(errs, t.access.Close())
		}
	}
	return errors.Join(errs...)
}

// useTable makes t the worker's first table.
func (w *worker) useTable(t *table) {
	w.tabs.add(t)
	w.tab.Store(t)
}

// swap applies c.Swap: it builds the new table, installs it, and answers
// the master with c.SwapID.
func (w *worker) swap(c wire.Command) {
	start := time.Now()
	err := w.install(*c.Swap)
	took := time.Since(start)
	// The answer first: the master's reload waits on it, not on the log.
	if nerr := w.notify(wire.SwapNotice(c.SwapID, err)); nerr != nil {
		w.log.Error("worker cannot answer a swap", "swap", c.SwapID, "err", nerr)
	}
	if err != nil {
		w.log.Warn("worker refused a swap; its routes stay", "swap", c.SwapID, "err", err)
	} else {
		w.log.Info("worker swapped its routes", "swap", c.SwapID, "us", took.Microseconds())
	}
}

// install builds l's table and switches to it.
func (w *worker) install(l hclconfig.Listener) error {
	w.swapMu.Lock()
	defer w.swapMu.Unlock()
	old := w.tab.Load()
	if old == nil || old.routes == nil {
		return errors.New("swap: this worker was not built from a listener config")
	}
	if err := swappable(old.cfg, l); err != nil {
		return err
	}
	nt, err := buildTable(l, w.log, old)
	if err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	w.tabs.add(nt)
	if nt.access == old.access {
		old.ownsAccess.Store(false)
	}
	// Counted under the new routes before the first request that uses them.
	w.metrics.setRoutes(l)
	w.tab.Store(nt)
	if w.loop != nil {
		nt.refs.Add(1)
		w.loop.Swap(loopTable(nt))
	}
	old.release()
	return nil
}

// loopTable is t as the event loop holds it.
func loopTable(t *table) *evloop.Table {
	return &evloop.Table{Fast: t.fast, Access: t.access, Deadline: t.deadline, Release: t.release}
}

// swappable refuses a config that differs from the running one in
// more than a swap changes: the master decided, and a worker that would
// apply it half is worse than one that says no.
func swappable(running, next hclconfig.Listener) error {
	if running.Name != next.Name || running.Class != next.Class || wire.SwapMask(running).Fingerprint() != wire.SwapMask(next).Fingerprint() {
		return errors.New("swap: the new config changes more than routes, hosts, headers, error pages, compression, the access log and per-request limits")
	}
	return nil
}
