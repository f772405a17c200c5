package rawsys

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func pair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestSendPeekRead(t *testing.T) {
	a, b := pair(t)
	if _, err := Peek(a); err != unix.EAGAIN {
		t.Fatalf("Peek on an empty socket = %v, want EAGAIN", err)
	}
	if n, err := Send(b, []byte("hello"), unix.MSG_NOSIGNAL); n != 5 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	if n, err := Peek(a); n != 1 || err != nil {
		t.Fatalf("Peek = %d, %v; want 1 byte waiting", n, err)
	}
	buf := make([]byte, 16)
	if n, err := Read(a, buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v (Peek must not take the byte)", buf[:n], err)
	}
	if _, err := Read(a, buf); err != unix.EAGAIN {
		t.Fatalf("Read on an empty socket = %v, want EAGAIN", err)
	}
	unix.Shutdown(b, unix.SHUT_WR)
	if n, err := Peek(a); n != 0 || err != nil {
		t.Fatalf("Peek at end of stream = %d, %v; want 0, nil", n, err)
	}
}

func TestFileCalls(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH}
	if _, err := Openat2(dfd, "../escape", &how); err == nil {
		t.Fatal("Openat2 beneath the root opened ../escape")
	}
	fd, err := Openat2(dfd, "f.txt", &how)
	if err != nil {
		t.Skipf("openat2 unavailable: %v", err)
	}
	defer Close(fd)
	var st unix.Stat_t
	if err := Fstat(fd, &st); err != nil || st.Size != 10 {
		t.Fatalf("Fstat = %d, %v", st.Size, err)
	}
	var sx unix.Statx_t
	if err := Statx(dfd, "f.txt", unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &sx); err != nil || sx.Size != 10 || sx.Ino != st.Ino {
		t.Fatalf("Statx = size %d ino %d, %v; want 10, %d", sx.Size, sx.Ino, err, st.Ino)
	}
	if err := Statx(dfd, "missing", unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &sx); err != unix.ENOENT {
		t.Errorf("Statx of a missing name = %v, want ENOENT", err)
	}
	b := make([]byte, 4)
	if n, err := Pread(fd, b, 3); err != nil || string(b[:n]) != "3456" {
		t.Fatalf("Pread = %q, %v", b[:n], err)
	}
	a, peer := pair(t)
	off := int64(5)
	if n, err := Sendfile(a, fd, &off, 3); n != 3 || err != nil || off != 8 {
		t.Fatalf("Sendfile = %d, %v, off %d", n, err, off)
	}
	if n, err := Read(peer, b); err != nil || string(b[:n]) != "567" {
		t.Fatalf("read of the sendfile = %q, %v", b[:n], err)
	}
	if err := Close(fd); err != nil {
		t.Fatal(err)
	}
	if err := Close(fd); err != unix.EBADF {
		t.Errorf("second Close = %v, want EBADF", err)
	}
}

func TestEpoll(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	a, b := pair(t)
	if err := EpollCtl(epfd, unix.EPOLL_CTL_ADD, a, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a)}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	if n, err := EpollPoll(epfd, events); n != 0 || err != nil {
		t.Fatalf("EpollPoll with nothing ready = %d, %v", n, err)
	}
	Send(b, []byte("x"), 0)
	if n, err := EpollWait(epfd, events, 10_000); n != 1 || err != nil || int(events[0].Fd) != a {
		t.Fatalf("EpollWait = %d, %v", n, err)
	}
	if err := EpollCtl(epfd, unix.EPOLL_CTL_DEL, a, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := EpollPoll(epfd, events); n != 0 || err != nil {
		t.Fatalf("EpollPoll after DEL = %d, %v", n, err)
	}
}

// listen makes a listening socket of the family on loopback (port 0 or
// path) and returns it with its address for connect.
func listen(t *testing.T, family int) (int, unix.Sockaddr) {
	t.Helper()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no socket of family %d: %v", family, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	var sa unix.Sockaddr
	switch family {
	case unix.AF_INET:
		sa = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	case unix.AF_INET6:
		sa = &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	case unix.AF_UNIX:
		sa = &unix.SockaddrUnix{Name: filepath.Join(t.TempDir(), "s")}
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Skipf("bind %v: %v", sa, err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatal(err)
	}
	if sa, err = unix.Getsockname(fd); err != nil {
		t.Fatal(err)
	}
	return fd, sa
}

// dial connects a blocking client to sa and returns it with its own
// address as the server sees it.
func dial(t *testing.T, family int, sa unix.Sockaddr) (int, unix.Sockaddr) {
	t.Helper()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, local
}

func TestAccept4(t *testing.T) {
	for _, tc := range []struct {
		name   string
		family int
	}{{"ipv4", unix.AF_INET}, {"ipv6", unix.AF_INET6}, {"unix", unix.AF_UNIX}} {
		t.Run(tc.name, func(t *testing.T) {
			lfd, sa := listen(t, tc.family)
			if _, _, _, err := Accept4(lfd, unix.SOCK_NONBLOCK); err != unix.EAGAIN {
				t.Fatalf("Accept4 with no client = %v, want EAGAIN", err)
			}
			_, local := dial(t, tc.family, sa)
			nfd, peer, inet, err := Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(nfd)
			var want netip.AddrPort
			switch a := local.(type) {
			case *unix.SockaddrInet4:
				want = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
			case *unix.SockaddrInet6:
				want = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
			}
			if peer != want || inet != (tc.family != unix.AF_UNIX) {
				t.Errorf("peer %v inet %v, want %v inet %v", peer, inet, want, tc.family != unix.AF_UNIX)
			}
			flags, err := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
			if err != nil || flags&unix.O_NONBLOCK == 0 {
				t.Errorf("accepted fd flags %#x (%v): want O_NONBLOCK", flags, err)
			}
			if inet {
				if err := SetNoDelay(nfd); err != nil {
					t.Fatal(err)
				}
				if v, err := unix.GetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
					t.Errorf("TCP_NODELAY %d (%v) after SetNoDelay", v, err)
				}
			}
		})
	}
}

// An accept allocates nothing: the point of Accept4.
func TestAccept4Allocs(t *testing.T) {
	lfd, sa := listen(t, unix.AF_INET)
	const runs = 20
	for range runs + 1 { // AllocsPerRun calls once more to warm up
		dial(t, unix.AF_INET, sa)
	}
	allocs := testing.AllocsPerRun(runs, func() {
		nfd, _, _, err := Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			panic(err)
		}
		SetNoDelay(nfd)
		Close(nfd)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per accept, want 0", allocs)
	}
}
