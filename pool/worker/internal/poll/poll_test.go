package poll

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func socketpair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// waitFor waits (bounded by the test's own deadline) until Wait reports
// fd, and returns its events.
func waitFor(t *testing.T, p *Poller, fd int, hot bool) uint32 {
	t.Helper()
	events := make([]Event, 8)
	for range 100 {
		n, err := p.Wait(events, 100*time.Millisecond, hot)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == fd {
				return ev.Events
			}
		}
	}
	t.Fatalf("fd %d never reported", fd)
	return 0
}

// nothing asserts that Wait reports nothing for fd right now.
func nothing(t *testing.T, p *Poller, fd int) {
	t.Helper()
	events := make([]Event, 8)
	n, err := p.Wait(events, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events[:n] {
		if int(ev.Fd) == fd {
			t.Fatalf("fd %d reported %#x", fd, ev.Events)
		}
	}
}

func TestAddModDel(t *testing.T) {
	for _, hot := range []bool{false, true} {
		p := newPoller(t)
		a, b := socketpair(t)
		if err := p.Add(a, In); err != nil {
			t.Fatal(err)
		}
		nothing(t, p, a)
		unix.Write(b, []byte("x"))
		if ev := waitFor(t, p, a, hot); ev&In == 0 {
			t.Fatalf("hot=%v: events %#x, want In", hot, ev)
		}
		// Level-triggered: still readable, until it is told otherwise.
		if err := p.Mod(a, 0); err != nil {
			t.Fatal(err)
		}
		nothing(t, p, a)
		if err := p.Mod(a, Out); err != nil {
			t.Fatal(err)
		}
		if ev := waitFor(t, p, a, hot); ev&Out == 0 {
			t.Fatalf("hot=%v: events %#x, want Out", hot, ev)
		}
		if err := p.Del(a); err != nil {
			t.Fatal(err)
		}
		nothing(t, p, a)
		if err := p.Del(a); err == nil {
			t.Error("Del of an fd not in the set succeeded")
		}
	}
}

func TestAddTwiceFails(t *testing.T) {
	p := newPoller(t)
	a, _ := socketpair(t)
	if err := p.Add(a, In); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(a, In); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second Add = %v, want EEXIST", err)
	}
}

// TestWake: a Wake from another goroutine ends a Wait that would block,
// and once Woken, the wake fd is quiet again.
func TestWake(t *testing.T) {
	p := newPoller(t)
	done := make(chan int, 1)
	go func() {
		events := make([]Event, 8)
		for {
			n, err := p.Wait(events, time.Minute, false)
			if err != nil {
				done <- -1
				return
			}
			for _, ev := range events[:n] {
				if p.IsWake(int(ev.Fd)) {
					p.Woken()
					done <- int(ev.Fd)
					return
				}
			}
		}
	}()
	p.Wake()
	if fd := <-done; fd < 0 || !p.IsWake(fd) {
		t.Fatalf("Wait ended with %d, not the wake fd", fd)
	}
	nothing(t, p, p.wakefd)
}

func TestBacklogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if Backlogged(fd) {
		t.Fatal("backlogged before any client")
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server's side of the handshake may finish just after the
	// client's: wait for the socket to say so.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 10_000); err != nil || n != 1 {
		t.Fatalf("poll = %d, %v", n, err)
	}
	if !Backlogged(fd) {
		t.Fatal("a client waits, but Backlogged says no")
	}
	ac, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ac.Close()
	if Backlogged(fd) {
		t.Error("backlogged after the accept")
	}
}

func TestBacklog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if n, known := Backlog(fd); n != 0 || !known {
		t.Fatalf("Backlog = %d, %v before any client", n, known)
	}
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The server's side of each handshake may finish just after the
	// client's: wait for the queue to hold all three.
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := Backlog(fd); n != 3; n, _ = Backlog(fd) {
		if time.Now().After(deadline) {
			t.Fatalf("Backlog = %d with three clients waiting", n)
		}
		time.Sleep(time.Millisecond)
	}
	ac, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ac.Close()
	if n, _ := Backlog(fd); n != 2 {
		t.Errorf("Backlog = %d after one accept, want 2", n)
	}
	ul, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	uf, err := ul.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer uf.Close()
	if _, known := Backlog(int(uf.Fd())); known {
		t.Error("a unix socket's backlog is known")
	}
}
