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

// Openat2 is openat2(2). name must not contain NUL.
func Openat2(dirfd int, name string, how *unix.OpenHow) (int, error) {
	var buf [256]byte
	var p []byte
	if len(name) < len(buf) {
		p = buf[:len(name)+1]
	} else {
		p = make([]byte, len(name)+1)
	}
	copy(p, name)
	p[len(name)] = 0
	fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT2, uintptr(dirfd), uintptr(unsafe.Pointer(&p[0])), uintptr(unsafe.Pointer(how)), unsafe.Sizeof(*how), 0, 0)
	return int(fd), errno(e)
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
