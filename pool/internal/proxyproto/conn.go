package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// ErrNoHeader is a connection's failure when it did not begin with a
// PROXY header.
var ErrNoHeader = errors.New("proxy protocol: no valid header")

// Conn is a connection whose PROXY header is read on its first Read or
// RemoteAddr (net/http asks for the address first, on the connection's
// own goroutine, so Accept never waits for a client). A connection
// without a valid header, or whose header does not come within timeout,
// is closed: its reads fail.
type Conn struct {
	net.Conn
	timeout time.Duration
	once    sync.Once
	remote  net.Addr
	rest    []byte // bytes that came after the header
	err     error
}

// NewConn wraps c.
func NewConn(c net.Conn, timeout time.Duration) *Conn { return &Conn{Conn: c, timeout: timeout} }

func (c *Conn) header() {
	c.once.Do(func() {
		c.remote = c.Conn.RemoteAddr()
		if c.timeout > 0 {
			c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
			defer c.Conn.SetReadDeadline(time.Time{})
		}
		buf := make([]byte, 0, 256)
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, make([]byte, 256)...)[:len(buf)]
			}
			m, err := c.Conn.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			n, src, res := Parse(buf)
			switch {
			case res == OK:
				if src.IsValid() {
					c.remote = net.TCPAddrFromAddrPort(src)
				}
				c.rest = buf[n:]
				return
			case res == Bad || len(buf) > MaxHeader:
				c.err = ErrNoHeader
			case err != nil:
				c.err = fmt.Errorf("proxy protocol: %w", err)
			default:
				continue
			}
			c.Conn.Close()
			return
		}
	})
}

// Read reads the bytes after the header.
func (c *Conn) Read(b []byte) (int, error) {
	c.header()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// RemoteAddr is the client's address from the header, or the peer's.
func (c *Conn) RemoteAddr() net.Addr {
	c.header()
	return c.remote
}

// ReadFrom keeps sendfile(2) for what is written to the connection.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// SyscallConn lets the worker's drain peek at the socket.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}
