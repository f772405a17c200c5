// Package rawsys makes the event loop's syscalls without telling the Go
// scheduler. syscall.Syscall marks the thread as possibly blocked; when a
// call takes longer than about 20µs (a sendfile over loopback can), the
// runtime hands the thread's P to another thread and wakes one to run it,
// and the loop then waits to get a P back: thread switches on the hot
// path. These calls never wait for the network (the fds are non-blocking)
// and read files from the page cache, so the loop makes them raw, as
// nginx's worker simply calls them. Only epoll_wait, which does wait, goes
// through the scheduler.
package rawsys

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func errno(e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// Read is read(2).
func Read(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), errno(e)
}

// Send is send(2) with flags.
func Send(fd int, b []byte, flags int) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(flags), 0, 0)
	return int(n), errno(e)
}

// Close is close(2).
func Close(fd int) error {
	_, _, e := syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return errno(e)
}

// Sendfile is sendfile(2): count bytes of in from *off to out.
func Sendfile(out, in int, off *int64, count int) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_SENDFILE, uintptr(out), uintptr(in), uintptr(unsafe.Pointer(off)), uintptr(count), 0, 0)
	return int(n), errno(e)
}

// Fstat is fstat(2).
func Fstat(fd int, st *unix.Stat_t) error {
	_, _, e := syscall.RawSyscall(unix.SYS_FSTAT, uintptr(fd), uintptr(unsafe.Pointer(st)), 0)
	return errno(e)
}

// Pread is pread(2).
func Pread(fd int, b []byte, off int64) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(off), 0, 0)
	return int(n), errno(e)
}

// cString is name with a NUL after it, in buf when it fits: a path for a
// raw syscall without an allocation.
func cString(buf *[256]byte, name string) []byte {
	var p []byte
	if len(name) < len(buf) {
		p = buf[:len(name)+1]
	} else {
		p = make([]byte, len(name)+1)
	}
	copy(p, name)
	p[len(name)] = 0
	return p
}

// Openat2 is openat2(2). name must not contain NUL.
func Openat2(dirfd int, name string, how *unix.OpenHow) (int, error) {
	var buf [256]byte
	p := cString(&buf, name)
	fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT2, uintptr(dirfd), uintptr(unsafe.Pointer(&p[0])), uintptr(unsafe.Pointer(how)), unsafe.Sizeof(*how), 0, 0)
	return int(fd), errno(e)
}

// Statx is statx(2) of name beneath dirfd. name must not contain NUL.
func Statx(dirfd int, name string, flags, mask int, st *unix.Statx_t) error {
	var buf [256]byte
	p := cString(&buf, name)
	_, _, e := syscall.RawSyscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(&p[0])), uintptr(flags), uintptr(mask), uintptr(unsafe.Pointer(st)), 0)
	return errno(e)
}

// EpollPoll is epoll_wait(2) with a zero timeout: the events ready now.
func EpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	return int(n), errno(e)
}

// EpollWait is epoll_wait(2) that blocks without releasing the thread's P.
func EpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), uintptr(msec), 0, 0)
	return int(n), errno(e)
}

// EpollCtl is epoll_ctl(2).
func EpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errno(e)
}

// Peek looks for a byte waiting on the socket fd without taking it:
// recv(2) with MSG_PEEK|MSG_DONTWAIT. n is 0 at end of stream; err is
// EAGAIN when nothing waits.
func Peek(fd int) (int, error) {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return int(n), errno(e)
}

// Accept4 is accept4(2), with the peer's address decoded on the stack:
// x/sys/unix's Accept4 allocates a sockaddr buffer and a Sockaddr for
// every connection (150 bytes), garbage that a burst of ten thousand
// accepts turns into heap the worker keeps until it is trimmed. peer is
// the zero AddrPort for a unix socket's peer (an IPv4-mapped IPv6 peer
// is given as IPv4); inet says the socket is TCP over IPv4 or IPv6.
func Accept4(fd, flags int) (nfd int, peer netip.AddrPort, inet bool, err error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := syscall.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, false, e
	}
	switch rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		peer = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), port(a.Port))
		inet = true
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		peer = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), port(a.Port))
		inet = true
	}
	return int(r), peer, inet, nil
}

// port reads a sockaddr's port, which is in network byte order.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// SetNoDelay sets TCP_NODELAY on a TCP socket (unix.SetsockoptInt's
// value escapes: 8 bytes of garbage per connection).
func SetNoDelay(fd int) error {
	v := int32(1)
	_, _, e := syscall.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&v)), 4, 0)
	return errno(e)
}
