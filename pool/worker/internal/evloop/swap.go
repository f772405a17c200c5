package evloop

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/hfork/hfork/pool/worker/app"
)

// Table is what the loop answers requests with: the routes' fast path and
// the access log. Swap replaces it between requests: the loop reads it once
// per request, on its own goroutine (syncTable), so a request sees one
// table, and a proxied request that spans passes keeps the table it began
// with (its exchange holds it).
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

// Swap makes t the loop's table from its next request on: the loop reads
// the table once per request (syncTable), so nothing waits for the loop,
// and a request it parses after Swap returned is answered from t. The
// loop is woken too, so that an idle one lets go of the old table.
func (l *Loop) Swap(t *Table) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Queued before next is stored: a syncTable that sees the new next
	// finds it in the queue.
	l.swaps = append(l.swaps, t)
	l.next.Store(t)
	if !l.ended {
		l.poll.Wake()
	}
}

// syncTable installs the table Swap stored last, if it is new, and lets go
// of any stored before it that the loop never used; it runs on the loop's
// goroutine before each request and on each wake.
func (l *Loop) syncTable() {
	if l.next.Load() == l.tab {
		return
	}
	l.mu.Lock()
	ts := l.swaps
	l.swaps = nil
	l.mu.Unlock()
	if len(ts) == 0 {
		return
	}
	t := ts[len(ts)-1]
	for _, skipped := range ts[:len(ts)-1] {
		skipped.retired = true
		l.tableDone(skipped)
	}
	if t == l.tab {
		return
	}
	old := l.tab
	l.tab, l.fast, l.access = t, t.Fast, t.Access
	l.cfg.Deadline = t.Deadline
	if !l.needRemote && (l.access != nil || len(l.fast.FastProxies()) > 0) {
		// Connections accepted without it need their client's address
		// for the log and X-Forwarded-For from now on.
		l.needRemote = true
		for _, c := range l.list {
			l.fillRemote(c)
		}
	}
	old.retired = true
	l.tableDone(old)
}

// fillRemote sets the client address of a connection accepted while no
// table needed it.
func (l *Loop) fillRemote(c *conn) {
	switch {
	case c.remote != "", c.pp:
		// Known (a PROXY header's always is), or the PROXY header that
		// names it is still to come.
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
