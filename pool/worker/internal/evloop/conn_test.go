package evloop

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestRead(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	b := make([]byte, 8)
	if n, st := read(fds[0], b); st != readAgain || n != 0 {
		t.Errorf("nothing sent: %d %v, want readAgain", n, st)
	}
	unix.Write(fds[1], []byte("abc"))
	if n, st := read(fds[0], b); st != readData || string(b[:n]) != "abc" {
		t.Errorf("sent abc: %q %v", b[:n], st)
	}
	unix.Close(fds[1])
	if n, st := read(fds[0], b); st != readClosed || n != 0 {
		t.Errorf("peer closed: %d %v, want readClosed", n, st)
	}
	if _, st := read(-1, b); st != readClosed {
		t.Errorf("bad fd: %v, want readClosed", st)
	}
}

func TestConnStateString(t *testing.T) {
	seen := map[string]bool{}
	for s := connIdle; s <= connProxy; s++ {
		name := s.String()
		if name == "" || seen[name] || name == "connState(?)" {
			t.Errorf("state %d: name %q", int(s), name)
		}
		seen[name] = true
	}
	if got := connState(99).String(); got != "connState(?)" {
		t.Errorf("unknown state: %q", got)
	}
}
