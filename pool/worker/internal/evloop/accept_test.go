package evloop

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSockaddrString(t *testing.T) {
	for _, tc := range []struct {
		sa   unix.Sockaddr
		want string
	}{
		{&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 80}, "127.0.0.1:80"},
		{&unix.SockaddrInet6{Addr: [16]byte{15: 1}, Port: 8080}, "[::1]:8080"},
		{&unix.SockaddrUnix{Name: "/x"}, ""},
	} {
		if got := sockaddrString(tc.sa); got != tc.want {
			t.Errorf("sockaddrString(%v) = %q, want %q", tc.sa, got, tc.want)
		}
	}
}

// An accepted connection's remote is rawsys.Accept4's peer as a string:
// the same as sockaddrString gives for the sockaddr (the form net/http's
// RemoteAddr has), an IPv4-mapped IPv6 peer as IPv4 included.
func TestPeerStringIsSockaddrString(t *testing.T) {
	for _, sa := range []unix.Sockaddr{
		&unix.SockaddrInet4{Addr: [4]byte{192, 0, 2, 7}, Port: 80},
		&unix.SockaddrInet6{Addr: [16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 15: 1}, Port: 8080},
		&unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 7}, Port: 443},
	} {
		var peer netip.AddrPort
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			peer = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		case *unix.SockaddrInet6:
			peer = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)) // as Accept4 gives it
		}
		if got, want := peer.String(), sockaddrString(sa); got != want {
			t.Errorf("%v: peer %q, sockaddrString %q", sa, got, want)
		}
	}
}

// TestSiblingsShareConnections: two loops on one listening socket, as
// sibling workers are. Clients that connect one after another, each once
// the previous was answered, find both loops waiting; each accept puts its
// loop at the back of the socket's queue of waiters, so the connections
// alternate instead of all going to the loop that started first.
func TestSiblingsShareConnections(t *testing.T) {
	// Sibling workers are processes of their own. Here both loops share
	// one: each holds a P while it waits hot (see poll.Wait), and the
	// clients need a third, or they run only while a loop is off its P.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var loops []*Loop
	for range 2 {
		l, err := New(Config{
			Listeners: []net.Listener{ln}, Fast: fakeFast{},
			ReadHeaderTimeout: 5 * time.Second, Idle: time.Minute, KeepAlive: true, Siblings: true,
		}, newHost(64))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- l.Run() }()
		defer func() {
			l.Stop()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("a loop did not end")
			}
		}()
		loops = append(loops, l)
	}
	const clients = 20
	for i := range clients {
		c, br := dial(t, ln.Addr().String())
		if resp, body := get(t, c, br, "/"); resp.StatusCode != 200 || body != "hi\n" {
			t.Fatalf("client %d: %d %q", i, resp.StatusCode, body)
		}
	}
	a, b := loops[0].Open(), loops[1].Open()
	if a+b != clients {
		t.Fatalf("the loops hold %d+%d connections, want %d in all", a, b, clients)
	}
	if a < clients/4 || b < clients/4 {
		t.Errorf("the loops hold %d and %d of %d connections: one took nearly all", a, b, clients)
	}
}
