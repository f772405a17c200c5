package worker

import (
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// Past graceful_timeout a drain spares the connections still moving an
// answer (or a request body, or a stream) and closes the rest; those it
// spares go when they stall, when they end, or at shutdown_timeout. What
// "moving" means is evloop's (Moved, Progress), so net/http's connections
// and the loop's are judged alike.

// sendChunk is how much of a file one sendfile(2) call of ReadFrom may
// send, so the bytes a long download moves show between calls as well as
// in the kernel's counters.
const sendChunk = 4 << 20

// moved is c's movement counter: the kernel's for TCP, plus the bytes
// this process read and wrote on it (all there is for a unix socket).
func (c *trackedConn) moved() int64 {
	n := c.io.Load()
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return n
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return n
	}
	rc.Control(func(fd uintptr) { n += evloop.Moved(int(fd)) })
	return n
}

// busy reports whether a request or a stream runs on c: the only
// connections a drain lets run past graceful_timeout.
func (c *trackedConn) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == http.StateActive || c.state == http.StateHijacked
}

// sample reads c's movement into its drain record; only the drain's
// goroutine calls it.
func (c *trackedConn) sample(now time.Time) {
	c.prog.Observe(c.moved(), now.UnixNano())
}

// moving reports whether c is busy and moved within evloop.StallWindow.
func (c *trackedConn) moving(now time.Time) bool {
	return c.busy() && !c.prog.Stalled(now.UnixNano())
}

// closeQuiet closes c counted as idle when nothing was arriving on it
// (an idle or silent new connection), as a cut otherwise.
func (c *trackedConn) closeQuiet(now time.Time) (cut bool) {
	c.mu.Lock()
	_, quiet := c.quietFor(now)
	if quiet {
		c.kicked = true
	}
	c.mu.Unlock()
	c.Close()
	return !quiet
}

// cutStalled closes every connection of cs that is not moving: past
// graceful_timeout a connection is let run only while it moves. It
// reports how many it cut (idle ones are counted as idle closes) and how
// many it spared.
func (w *worker) cutStalled(cs []*trackedConn, now time.Time) (cut, spared int) {
	for _, c := range cs {
		if c.moving(now) {
			spared++
			continue
		}
		if c.closeQuiet(now) {
			cut++
		}
	}
	return cut, spared
}

// readFromChunked keeps sendfile while letting a long file's progress
// show: a body net/http reads from a file reaches ReadFrom as the file or
// as an *io.LimitedReader of it, and TCPConn.ReadFrom turns only those
// into sendfile, so the chunks are limited readers of the same file.
func (c *trackedConn) readFromChunked(rf io.ReaderFrom, r io.Reader) (int64, error) {
	src, lr := r, (*io.LimitedReader)(nil)
	if l, ok := r.(*io.LimitedReader); ok {
		src, lr = l.R, l
	}
	var total int64
	for {
		chunk := io.LimitedReader{R: src, N: sendChunk}
		if lr != nil {
			if lr.N <= 0 {
				return total, nil
			}
			chunk.N = min(lr.N, sendChunk)
		}
		want := chunk.N
		n, err := c.timedReadFrom(rf, &chunk) // write_timeout for each piece
		total += n
		c.io.Add(n)
		if lr != nil {
			lr.N -= n
		}
		if err != nil || n < want {
			return total, err
		}
	}
}
