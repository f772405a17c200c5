package listeners

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":  "127.0.0.1:8080",
		"localhost:8080":  "127.0.0.1:8080",
		":8080":           ":8080",
		"0.0.0.0:8080":    ":8080",
		"[::]:8080":       ":8080",
		"[::1]:80":        "[::1]:80",
		"unix:/tmp/x.sok": "unix:/tmp/x.sok",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenTCPSharedAcrossDups(t *testing.T) {
	s, err := open("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key, err := keyOfFD(int(s.File.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	// A child would get the fd; here a FileListener on a dup stands in.
	ln, err := net.FileListener(s.File)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", key)
	if err != nil {
		t.Fatalf("dial %s: %v", key, err)
	}
	c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
}

func TestUnixStaleAndLive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	// A stale socket file (nobody listening) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	s, err := open("unix:" + path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	// A live one is refused.
	if _, err := open("unix:" + path); err == nil {
		t.Fatal("a second bind on a live unix socket succeeded")
	}
	// Release keeps the file (handover); Close removes it.
	s2, _ := os.Stat(path)
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil || s2 == nil {
		t.Fatalf("Release removed the socket file: %v", err)
	}
	s, err = open("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Close left the socket file: %v", err)
	}
	// A regular file in the way is an error, never removed.
	os.WriteFile(path, []byte("x"), 0o644)
	if _, err := open("unix:" + path); err == nil {
		t.Fatal("bound over a regular file")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("removed a regular file")
	}
}

func TestSetRefcounts(t *testing.T) {
	set := NewSet(nil)
	a := []string{"127.0.0.1:0"}
	if err := set.Prepare([]Bind{{Addr: a[0]}}); err != nil {
		t.Fatal(err)
	}
	s1, err := set.Acquire(a)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := set.Acquire(a)
	if s1[0] != s2[0] {
		t.Fatal("one address, two sockets")
	}
	set.Release(a)
	if len(set.All()) != 1 {
		t.Fatal("socket closed while a generation still uses it")
	}
	set.Release(a)
	if len(set.All()) != 0 {
		t.Fatal("socket kept after its last user left")
	}
	// Prepare fails whole: nothing new stays open.
	if err := set.Prepare([]Bind{{Addr: "127.0.0.1:0"}, {Addr: "256.0.0.1:1"}}); err == nil {
		t.Fatal("bad address prepared")
	}
	if len(set.All()) != 0 {
		t.Fatal("a failed Prepare left sockets open")
	}
}

// TestFdKeepsNonblocking: os/exec calls Fd on every file it passes to a
// child. For the master's sockets that must not switch the shared open file
// description to blocking mode, or running workers' accepts would block in
// the kernel and a draining worker could not stop accepting.
func TestFdKeepsNonblocking(t *testing.T) {
	s, err := open("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd := s.File.Fd()
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("Fd switched the listening socket to blocking mode")
	}
}

// TestTCPNoDelayInherited: accepted connections take TCP_NODELAY from the
// listening socket, so exec'd programs get it without setting it.
func TestTCPNoDelayInherited(t *testing.T) {
	s, err := open("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := unix.GetsockoptInt(int(s.File.Fd()), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	if err != nil || v == 0 {
		t.Fatalf("TCP_NODELAY on the listening socket = %d, %v", v, err)
	}
}

// open binds addr with no unix socket permissions to apply.
func open(addr string) (*Socket, error) {
	return openBind(Bind{Addr: addr}, perms{uid: -1, gid: -1})
}
