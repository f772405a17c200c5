package evloop

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/hfork/hfork/pool/worker/app"
)

// Table is what the loop answers requests with: the routes' fast path and
// the access log. Swap replaces it between requests: the loop reads it
// only on its own goroutine and changes it only between two passes, so a
// request answered in one pass sees one table, and a proxied request that
// spans passes keeps the table it began with (its exchange holds it).
type Table struct {
	Fast   app.FastServer
	Access *app.AccessLog // nil: no access log
	// Deadline is a proxied request's timeout under these routes; 0: none.
	Deadline time.Duration
	// Release, when set, is called on the loop's goroutine once the loop
	// uses the table no more: another replaced it and the last exchange
	// begun under it ended.
	Release func()

	exchanges int  // proxied requests in flight under this table
	retired   bool // replaced: release once exchanges is 0
}

// swapReq is a Swap waiting for the loop.
type swapReq struct {
	t    *Table
	done chan struct{}
}

// Swap makes t the loop's table from its next request on. It returns once
// the loop switched, or once it has ended (then t is not used).
func (l *Loop) Swap(t *Table) {
	req := swapReq{t: t, done: make(chan struct{})}
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.swaps = append(l.swaps, req)
	l.poll.Wake()
	l.mu.Unlock()
	select {
	case <-req.done:
	case <-l.done:
	}
}

// applySwaps installs the tables Swap queued, in order; it runs on the
// loop's goroutine, between passes.
func (l *Loop) applySwaps() {
	l.mu.Lock()
	reqs := l.swaps
	l.swaps = nil
	l.mu.Unlock()
	for _, req := range reqs {
		old := l.tab
		l.tab, l.fast, l.access = req.t, req.t.Fast, req.t.Access
		l.cfg.Deadline = req.t.Deadline
		if !l.needRemote && (l.access != nil || len(l.fast.FastProxies()) > 0) {
			// Connections accepted without it need their client's address
			// for the log and X-Forwarded-For from now on.
			l.needRemote = true
			for _, c := range l.list {
				l.fillRemote(c)
			}
		}
		if old != nil {
			old.retired = true
			l.tableDone(old)
		}
		close(req.done)
	}
}

// fillRemote sets the client address of a connection accepted while no
// table needed it.
func (l *Loop) fillRemote(c *conn) {
	switch {
	case c.remote != "", c.pp:
		// Known, or the PROXY header that names it is still to come.
	case c.ppSrc.IsValid():
		c.remote = c.ppSrc.String()
	default:
		if sa, err := unix.Getpeername(c.fd); err == nil {
			c.remote = sockaddrString(sa)
		}
	}
}

// SetRelease sets the first table's Release; call it before Run.
func (l *Loop) SetRelease(release func()) { l.tab.Release = release }

// holdTable is the current table, held by an exchange until it ends.
func (l *Loop) holdTable() *Table {
	l.tab.exchanges++
	return l.tab
}

// dropTable lets go of a table an exchange held.
func (l *Loop) dropTable(t *Table) {
	if t == nil {
		return
	}
	t.exchanges--
	l.tableDone(t)
}

func (l *Loop) tableDone(t *Table) {
	if t.retired && t.exchanges == 0 && t.Release != nil {
		rel := t.Release
		t.Release = nil
		rel()
	}
}
