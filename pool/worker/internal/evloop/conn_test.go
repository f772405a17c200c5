package evloop

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestRead(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	b := make([]byte, 8)
	if n, st := read(fds[0], b); st != ioAgain || n != 0 {
		t.Errorf("nothing sent: %d %v, want ioAgain", n, st)
	}
	unix.Write(fds[1], []byte("abc"))
	if n, st := read(fds[0], b); st != ioOK || string(b[:n]) != "abc" {
		t.Errorf("sent abc: %q %v", b[:n], st)
	}
	unix.Close(fds[1])
	if n, st := read(fds[0], b); st != ioClosed || n != 0 {
		t.Errorf("peer closed: %d %v, want ioClosed", n, st)
	}
	if _, st := read(-1, b); st != ioClosed {
		t.Errorf("bad fd: %v, want ioClosed", st)
	}
}

// Every idle connection costs a conn: it stays within the runtime's
// 240-byte size class (the next is 256), so ten thousand idle
// connections hold 2.3 MiB of them. A field that must be added goes
// among the small ones at the end, or into a word's padding.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 240 {
		t.Errorf("a conn is %d bytes, over the 240-byte size class", n)
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

// TestWrite: write takes what the socket takes and says when it is full,
// and when the peer is gone.
func TestWrite(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	if n, st := write(fds[0], []byte("abc"), unix.MSG_NOSIGNAL); st != ioOK || n != 3 {
		t.Fatalf("small write: %d %v", n, st)
	}
	big := make([]byte, 16<<20) // more than any socket buffer
	n, st := write(fds[0], big, unix.MSG_NOSIGNAL)
	if st != ioAgain || n <= 0 || n >= len(big) {
		t.Fatalf("big write: %d %v, want part of it and ioAgain", n, st)
	}
	unix.Close(fds[1])
	if _, st := write(fds[0], []byte("x"), unix.MSG_NOSIGNAL); st != ioClosed {
		t.Fatalf("write to a closed peer: %v, want ioClosed", st)
	}
}
