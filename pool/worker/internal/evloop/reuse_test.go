package evloop

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// order lists the reusable queue from its head.
func order(l *Loop) []int {
	var fds []int
	for c := l.rqHead; c != nil; c = c.rqNext {
		fds = append(fds, c.fd)
	}
	return fds
}

func TestReusableQueueOrder(t *testing.T) {
	l := &Loop{}
	cs := make([]*conn, 4)
	for i := range cs {
		cs[i] = &conn{fd: i}
		l.queueReusable(cs[i])
	}
	l.queueReusable(cs[1]) // already queued: keeps its place
	if got := order(l); len(got) != 4 || got[0] != 0 || got[3] != 3 || got[1] != 1 {
		t.Fatalf("queue %v, want [0 1 2 3]", got)
	}
	l.unqueueReusable(cs[0]) // the head
	l.unqueueReusable(cs[2]) // the middle
	l.unqueueReusable(cs[2]) // not queued: nothing
	l.queueReusable(cs[0])   // back at the tail
	if got := order(l); len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 0 {
		t.Fatalf("queue %v, want [1 3 0]", got)
	}
	l.unqueueReusable(cs[0]) // the tail
	l.unqueueReusable(cs[1])
	l.unqueueReusable(cs[3])
	if l.rqHead != nil || l.rqTail != nil {
		t.Fatal("an empty queue keeps a head or a tail")
	}
}

func TestPeerAddr(t *testing.T) {
	for _, tc := range []struct {
		sa   unix.Sockaddr
		want string
	}{
		{&unix.SockaddrInet4{Addr: [4]byte{10, 1, 2, 3}}, "10.1.2.3"},
		{&unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}}, "127.0.0.1"},
		{&unix.SockaddrInet6{Addr: [16]byte{15: 1}}, "::1"},
	} {
		if got := peerAddr(tc.sa); got != netip.MustParseAddr(tc.want) {
			t.Errorf("peerAddr(%v) = %v, want %s", tc.sa, got, tc.want)
		}
	}
	if peerAddr(&unix.SockaddrUnix{Name: "/x"}).IsValid() {
		t.Error("a unix socket peer has an address")
	}
}
