package worker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
)

// gatedListener is one of the worker's listening sockets. It takes a slot
// of the worker's connection semaphore before it accepts, so a worker never
// holds more connections than its class allows (one for sync), and the
// connections it cannot take stay in the kernel's queue for its siblings.
type gatedListener struct {
	net.Listener
	w    *worker
	done chan struct{}
	once sync.Once
}

func (l *gatedListener) Accept() (net.Conn, error) {
	sem := l.w.connSem
	if sem != nil {
		select {
		case sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		if sem != nil {
			<-sem
		}
		select {
		case <-l.done:
			return nil, net.ErrClosed
		default:
		}
		return nil, err
	}
	// A connection accepted while Close races is still ours: the kernel gave
	// it to this process, so it is served (or drained), never dropped.
	return l.w.adopt(c), nil
}

// Close closes only this process's fd: the socket is shared with sibling
// workers and must keep accepting for them, so it is never shut down.
func (l *gatedListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// trackedConn is a connection the worker serves. It knows its HTTP state so
// a drain can tell an idle connection from a busy one, and it carries the
// slot of the request in flight on it.
type trackedConn struct {
	net.Conn
	w         *worker
	closeOnce sync.Once
	req       reqState

	mu      sync.Mutex
	state   http.ConnState
	since   time.Time // when it became new or idle
	gotData bool      // bytes arrived since it became new or idle
	kicked  bool      // a drain woke its read to close it
}

// aLongTimeAgo is a read deadline in the past: setting it wakes a blocked
// read at once.
var aLongTimeAgo = time.Unix(1, 0)

// Read notes that data arrived, which tells a drain that a request is
// coming in on this connection. When a drain has woken an idle read to
// close the connection, the read ends as a clean EOF so net/http closes it
// quietly, but only after a last look finds nothing waiting in the kernel:
// if a request's bytes won that race, the wake-up is undone and the request
// is served.
func (c *trackedConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		c.mu.Lock()
		if n > 0 {
			c.gotData = true
			if c.kicked {
				c.kicked = false
				c.Conn.SetReadDeadline(time.Time{})
			}
		} else if c.kicked && errors.Is(err, os.ErrDeadlineExceeded) {
			if pending(c.Conn) {
				c.kicked = false
				c.Conn.SetReadDeadline(time.Time{})
				c.mu.Unlock()
				continue
			}
			err = io.EOF
		}
		c.mu.Unlock()
		return n, err
	}
}

// pending reports whether bytes wait unread in the kernel for nc. A read
// whose deadline has passed fails before it looks, so this asks the socket
// directly without consuming anything.
func pending(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}

// Close closes the connection once, gives its slot back to the listener and
// forgets it. net/http, a hijacker and the worker may all call it.
func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.w.forget(c)
	})
	return err
}

// setState records a net/http connection state change.
func (c *trackedConn) setState(s http.ConnState, now time.Time) {
	c.mu.Lock()
	c.state = s
	if s == http.StateIdle {
		c.since, c.gotData = now, false
	}
	c.mu.Unlock()
}

// kick wakes the read of a connection that has been idle (or new without a
// byte) for grace, counted from when the drain began at the earliest, so
// that net/http closes it. A connection with bytes arriving is left alone:
// a request is on its way. It reports whether it kicked.
func (c *trackedConn) kick(now, drainStart time.Time, grace time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (c.state != http.StateIdle && c.state != http.StateNew) || c.gotData {
		return false
	}
	if now.Sub(later(c.since, drainStart)) < grace {
		return false
	}
	// Kicked again on every pass: net/http sets its own idle deadline right
	// after it marks a connection idle, which may land after this one.
	c.kicked = true
	c.Conn.SetReadDeadline(aLongTimeAgo)
	return true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// connKey finds the trackedConn of a request from its context.
type connKey struct{}

// adopt starts tracking a freshly accepted connection.
func (w *worker) adopt(nc net.Conn) *trackedConn {
	c := &trackedConn{Conn: nc, w: w, state: http.StateNew, since: time.Now()}
	w.connsMu.Lock()
	closed := w.connsClosed
	if !closed {
		w.conns[c] = struct{}{}
	}
	w.connsMu.Unlock()
	if closed {
		// A fast stop already closed everything; this one follows.
		c.closeOnce.Do(func() {
			nc.Close()
			w.release()
		})
	}
	return c
}

// forget stops tracking c and frees its slot.
func (w *worker) forget(c *trackedConn) {
	w.connsMu.Lock()
	_, ok := w.conns[c]
	delete(w.conns, c)
	w.connsMu.Unlock()
	if !ok {
		return
	}
	w.release()
	select {
	case w.connGone <- struct{}{}:
	default:
	}
}

// release gives a connection slot back to the listeners.
func (w *worker) release() {
	if w.connSem != nil {
		<-w.connSem
	}
}

// connState is the http.Server's ConnState hook.
func (w *worker) connState(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*trackedConn)
	if !ok {
		return
	}
	var now time.Time
	if s == http.StateIdle {
		now = time.Now()
	}
	c.setState(s, now)
	if s == http.StateHijacked {
		// The app took the connection over: whatever runs on it now is a
		// stream, not a stuck request.
		w.finish(&c.req, true)
	}
}

// connContext is the http.Server's ConnContext hook: it lets a request find
// its connection, and lets an app that upgrades the connection say so.
func (w *worker) connContext(ctx context.Context, nc net.Conn) context.Context {
	c, ok := nc.(*trackedConn)
	if !ok {
		return ctx
	}
	ctx = context.WithValue(ctx, connKey{}, c)
	return app.WithUpgradeHook(ctx, func() { w.finish(&c.req, true) })
}

// snapshotConns copies the tracked connections so they can be closed
// without holding the lock their Close takes.
func (w *worker) snapshotConns() []*trackedConn {
	w.connsMu.Lock()
	defer w.connsMu.Unlock()
	cs := make([]*trackedConn, 0, len(w.conns))
	for c := range w.conns {
		cs = append(cs, c)
	}
	return cs
}

// closeConns closes every connection now, hijacked ones included, and makes
// any connection accepted later close at once. It reports how many it
// closed and how many of those had been hijacked.
func (w *worker) closeConns() (closed, hijacked int) {
	w.connsMu.Lock()
	w.connsClosed = true
	w.connsMu.Unlock()
	for _, c := range w.snapshotConns() {
		c.mu.Lock()
		if c.state == http.StateHijacked {
			hijacked++
		}
		c.mu.Unlock()
		c.Close()
		closed++
	}
	return closed, hijacked
}
