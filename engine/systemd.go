package engine

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hfork/hfork/pool/wire"
)

// sdWait bounds one datagram to systemd; sdFlush bounds how long an exiting
// master waits for what it queued (its last word, STOPPING=1, matters).
const (
	sdWait  = time.Second
	sdFlush = 2 * time.Second
)

// sdNotifier talks to systemd's notify socket when the master runs under a
// Type=notify(-reload) unit. Without NOTIFY_SOCKET it does nothing. The
// state owner only queues: a writer goroutine sends in order, each write
// bounded by sdWait, so a systemd that does not read never stalls the
// master.
type sdNotifier struct {
	addr  string
	queue chan string
	done  chan struct{}
}

// newSDNotifier takes NOTIFY_SOCKET from the environment (and removes it,
// so workers do not talk to systemd directly).
func newSDNotifier() *sdNotifier {
	s := &sdNotifier{addr: os.Getenv(wire.EnvNotifySocket)}
	os.Unsetenv(wire.EnvNotifySocket)
	if s.addr != "" {
		s.queue = make(chan string, 32)
		s.done = make(chan struct{})
		go s.write(s.queue)
	}
	return s
}

func (s *sdNotifier) write(queue <-chan string) {
	defer close(s.done)
	for state := range queue {
		c, err := wire.DialNotify(s.addr, sdWait)
		if err != nil {
			continue
		}
		c.Notify(state)
		c.Close()
	}
}

// send queues state for systemd. It never blocks: with 32 states queued
// systemd is not listening, and one more would not be heard either.
func (s *sdNotifier) send(state string) {
	if s.queue == nil {
		return
	}
	select {
	case s.queue <- state:
	default:
	}
}

// close sends what is queued, waiting at most sdFlush.
func (s *sdNotifier) close() {
	if s.queue == nil {
		return
	}
	close(s.queue)
	s.queue = nil
	select {
	case <-s.done:
	case <-time.After(sdFlush):
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
