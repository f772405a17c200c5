package hclconfig

import (
	"strings"
	"testing"
)

func TestParseBind(t *testing.T) {
	const dir = "/etc/hfork"
	good := []struct{ in, want string }{
		{":8080", ":8080"},
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"0.0.0.0:80", "0.0.0.0:80"},
		{"[::1]:8080", "[::1]:8080"},
		{"[::]:8080", "[::]:8080"},
		{"[0:0::1]:443", "[::1]:443"},
		{"[fe80::1%eth0]:80", "[fe80::1%eth0]:80"},
		{"localhost:08080", "localhost:8080"},
		{"Example.COM:443", "example.com:443"},
		{"127.0.0.1:0", "127.0.0.1:0"},
		{":65535", ":65535"},
		{"unix:/run/hfork/web.sock", "unix:/run/hfork/web.sock"},
		{"unix:web.sock", "unix:/etc/hfork/web.sock"},
		{"unix:../run/./web.sock", "unix:/etc/run/web.sock"},
	}
	for _, tc := range good {
		b, err := parseBind(tc.in, dir)
		if err != nil || b.addr != tc.want {
			t.Errorf("parseBind(%q) = %q, %v; want %q", tc.in, b.addr, err, tc.want)
		}
	}

	bad := []struct{ in, want string }{
		{"localhost", "has no port"},
		{"8080", "has no port"},
		{"127.0.0.1:", "has no port"},
		{":65536", "out of range"},
		{":-1", "out of range"},
		{":http", "not a number"},
		{"::1:8080", "without brackets"},
		{"[::1]8080", "not host:port"},
		{"bad host:80", "neither an IP address nor a host name"},
		{"-bad.example:80", "neither an IP address nor a host name"},
		{"unix:", "path is empty"},
		{"unix:/" + strings.Repeat("x", 120), "at most 107"},
	}
	for _, tc := range bad {
		_, err := parseBind(tc.in, dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseBind(%q) error = %v; want it to say %q", tc.in, err, tc.want)
		}
	}
}

func TestBindOverlaps(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{":8080", ":8080", true},
		{":8080", "127.0.0.1:8080", true},
		{":8080", "[::1]:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "localhost:8080", true},
		{"0.0.0.0:8080", "[::1]:8080", false},
		{"127.0.0.1:8080", "127.0.0.2:8080", false},
		{"127.0.0.1:8080", "127.0.0.1:8081", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{"unix:/a.sock", "unix:/a.sock", true},
		{"unix:/a.sock", "unix:/b.sock", false},
		{"unix:/a.sock", ":8080", false},
	}
	for _, tc := range cases {
		a, err := parseBind(tc.a, "/")
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseBind(tc.b, "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := a.overlaps(b); got != tc.want {
			t.Errorf("%q overlaps %q = %v; want %v", tc.a, tc.b, got, tc.want)
		}
		if got := b.overlaps(a); got != tc.want {
			t.Errorf("%q overlaps %q = %v; want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
