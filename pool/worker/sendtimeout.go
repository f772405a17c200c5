package worker

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// write_timeout means what nginx's send_timeout means: the longest wait
// for a client to take more of its answer, not a cap on the whole answer.
// net/http's WriteTimeout is the latter (a deadline from the end of the
// head), which cuts a large download at a steady rate and lets a client
// that reads one byte a second hold a connection and its send buffer
// until then. So the worker leaves net/http's unset and gives each write
// a deadline; when it passes, the write goes on if the client took bytes
// since the last look (TCP_INFO's bytes_acked: a large send buffer wakes
// a blocked write only once a third of it is free). A client that stops
// reading is cut off one to two write_timeouts after its last byte.

// timedWrite writes p within write_timeout of the client's last take.
func (c *trackedConn) timedWrite(p []byte) (int, error) {
	wto := c.w.cfg.WriteTimeout
	if wto <= 0 || c.raw.Load() {
		return c.Conn.Write(p)
	}
	n := 0
	for {
		c.Conn.SetWriteDeadline(time.Now().Add(wto))
		k, err := c.Conn.Write(p[n:])
		n += k
		if err == nil || !c.stillTaking(err) {
			return n, err
		}
	}
}

// timedReadFrom is timedWrite for net/http's copy of a file, which the
// socket's ReadFrom sends with sendfile(2); the file's offset (and an
// io.LimitedReader's count) move with what was sent, so a write that
// goes on resumes where it stopped.
func (c *trackedConn) timedReadFrom(rf io.ReaderFrom, r io.Reader) (int64, error) {
	wto := c.w.cfg.WriteTimeout
	if wto <= 0 || c.raw.Load() {
		return rf.ReadFrom(r)
	}
	var total int64
	for {
		c.Conn.SetWriteDeadline(time.Now().Add(wto))
		n, err := rf.ReadFrom(r)
		total += n
		if err == nil || !c.stillTaking(err) {
			return total, err
		}
	}
}

// stillTaking reports whether a write that failed with err may go on:
// err is the write deadline, and the client took bytes since the last
// look. Otherwise a deadline is logged at debug.
func (c *trackedConn) stillTaking(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	if acked, ok := bytesAcked(c.Conn); ok && acked != c.acked {
		c.acked = acked
		return true
	}
	c.w.log.Debug("client took nothing of its answer for write_timeout; closing",
		"remote", c.RemoteAddr().String(), "write_timeout", c.w.cfg.WriteTimeout.String())
	return false
}

// bytesAcked is the socket's count of bytes the client acknowledged.
func bytesAcked(nc any) (uint64, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var acked uint64
	var serr error
	rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr == nil {
			acked = info.Bytes_acked
		}
	})
	return acked, serr == nil
}
