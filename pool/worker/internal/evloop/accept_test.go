package evloop

import (
	"testing"

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
