package wire

import (
	"fmt"
	"net"
	"time"
)

// Notifier sends sd_notify state strings ("READY=1", "WATCHDOG=1\n…") to
// whoever supervises the process.
type Notifier interface {
	Notify(state string) error
}

// NotifyClient is the sd_notify client: a unix datagram socket connected
// to NOTIFY_SOCKET. Each Notify call is one datagram, so the lines of one
// heartbeat always arrive together.
type NotifyClient struct {
	conn *net.UnixConn
	wait time.Duration
}

// DialNotify connects to the notify socket at addr, a path or, with a
// leading '@', a name in Linux's abstract namespace (the net package maps
// the '@' to the leading NUL byte the kernel expects). Each later write
// waits at most wait for room: the kernel queues only a few datagrams
// (net.unix.max_dgram_qlen) for a receiver that is busy.
func DialNotify(addr string, wait time.Duration) (*NotifyClient, error) {
	if addr == "" {
		return nil, fmt.Errorf("dial notify socket: empty address")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("dial notify socket %s: %w", addr, err)
	}
	return &NotifyClient{conn: conn, wait: wait}, nil
}

// Notify sends state as one datagram. It is safe for concurrent use.
func (n *NotifyClient) Notify(state string) error {
	if err := n.conn.SetWriteDeadline(time.Now().Add(n.wait)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if _, err := n.conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Close closes the socket.
func (n *NotifyClient) Close() error {
	return n.conn.Close()
}
