package engine

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sdNotifier talks to systemd's notify socket when the master runs under a
// Type=notify(-reload) unit. Without NOTIFY_SOCKET it does nothing.
type sdNotifier struct {
	addr string
}

// newSDNotifier takes NOTIFY_SOCKET from the environment (and removes it,
// so workers do not talk to systemd directly).
func newSDNotifier() *sdNotifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return &sdNotifier{addr: addr}
}

func (s *sdNotifier) send(state string) {
	if s.addr == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
