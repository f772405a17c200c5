package poll

import (
	"fmt"
	"runtime"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// Event kinds, as epoll names them.
const (
	In        = unix.EPOLLIN
	Out       = unix.EPOLLOUT
	Err       = unix.EPOLLERR
	Hup       = unix.EPOLLHUP
	Exclusive = unix.EPOLLEXCLUSIVE
)

// Event is one fd's readiness.
type Event = unix.EpollEvent

// hotWaitMax bounds a wait that holds the P: about when the runtime would
// interrupt it to preempt the goroutine anyway (see Wait's EINTR).
const hotWaitMax = 10

// Poller is an epoll set with its wake fd.
type Poller struct {
	epfd   int
	wakefd int
}

// New makes an epoll set holding its wake fd.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p := &Poller{epfd: epfd, wakefd: wakefd}
	if err := p.Add(wakefd, In); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Add puts fd in the set, reporting events.
func (p *Poller) Add(fd int, events uint32) error {
	return p.ctl(unix.EPOLL_CTL_ADD, fd, events)
}

// Mod changes what the set reports for fd.
func (p *Poller) Mod(fd int, events uint32) error {
	return p.ctl(unix.EPOLL_CTL_MOD, fd, events)
}

// Del takes fd out of the set.
func (p *Poller) Del(fd int) error {
	if err := rawsys.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("epoll_ctl del %d: %w", fd, err)
	}
	return nil
}

func (p *Poller) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := rawsys.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl %d: %w", fd, err)
	}
	return nil
}

// Wait fills events with what is ready, waiting up to timeout (0: not at
// all). hot says the loop has been busy lately: then it waits holding
// its P, cut at 10ms; else through the scheduler.
//
// Under load events are ready at once, so Wait asks without a wait first.
// A blocking syscall through the scheduler costs a thread hand-off
// whenever it waits more than 20µs, a third of a request's CPU at nginx's
// pace; so a busy loop waits raw. An idle loop waits through the scheduler
// and gives its thread up.
func (p *Poller) Wait(events []Event, timeout time.Duration, hot bool) (int, error) {
	msec := int(timeout / time.Millisecond)
	if timeout > 0 && msec == 0 {
		msec = 1
	}
	n, err := rawsys.EpollPoll(p.epfd, events)
	if err == nil && n == 0 && msec != 0 {
		if hot {
			n, err = rawsys.EpollWait(p.epfd, events, min(msec, hotWaitMax))
		} else {
			n, err = unix.EpollWait(p.epfd, events, msec)
		}
	}
	if err == unix.EINTR {
		// The runtime interrupts a wait with a signal when it needs this
		// goroutine to stop (for a collection, or to run others): yield,
		// or it never gets to.
		runtime.Gosched()
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("epoll_wait: %w", err)
	}
	return n, nil
}

// IsWake reports whether fd is the wake fd; the caller then calls Woken.
func (p *Poller) IsWake(fd int) bool { return fd == p.wakefd }

// Wake makes a Wait return, now or at its next call.
func (p *Poller) Wake() {
	one := [8]byte{1}
	unix.Write(p.wakefd, one[:])
}

// Woken takes the wake, so the next Wait waits again.
func (p *Poller) Woken() {
	var buf [8]byte
	unix.Read(p.wakefd, buf[:])
}

// Close closes the set and its wake fd. The fds in the set stay open.
func (p *Poller) Close() error {
	unix.Close(p.wakefd)
	return unix.Close(p.epfd)
}

// Backlogged reports whether a client waits in the accept queue of any
// of the listening sockets fds. The queue is shared with sibling workers,
// so one of them may take it first; an idle connection closed for nothing
// is the worst that does.
func Backlogged(fds ...int) bool {
	var buf [8]unix.PollFd
	pfds := buf[:0]
	for _, fd := range fds {
		pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	if n, err := unix.Poll(pfds, 0); err != nil || n == 0 {
		return false
	}
	for _, p := range pfds {
		if p.Revents&unix.POLLIN != 0 {
			return true
		}
	}
	return false
}

// Backlog is how many clients wait in the accept queues of the listening
// TCP sockets fds, from TCP_INFO (a listening socket reports its queue's
// length as tcpi_unacked). known is false if any socket could not say
// (a unix socket): then only Backlogged can tell.
func Backlog(fds ...int) (n int, known bool) {
	known = true
	for _, fd := range fds {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || info.State != tcpListen {
			known = false
			continue
		}
		n += int(info.Unacked)
	}
	return n, known
}

// tcpListen is TCP_LISTEN in the kernel's tcp_states.h.
const tcpListen = 10
