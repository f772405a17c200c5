package listeners

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket is one listening socket held by the master.
type Socket struct {
	// Addr is the bind address as configured ("host:port" or "unix:/path").
	Addr string
	// File is the socket's fd. Children get it through ExtraFiles.
	File *os.File

	unixPath string
	unixIno  uint64 // inode of the socket file this process bound or adopted
}

// Network splits a configured bind address into a network and an address.
func Network(addr string) (network, address string) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", p
	}
	return "tcp", addr
}

// openBind binds and listens on b and applies p to a unix socket file. A
// stale unix socket file (nobody accepts on it) is removed first; a live
// one or a file that is not a socket is an error.
func openBind(b Bind, p perms) (*Socket, error) {
	addr := b.Addr
	network, address := Network(addr)
	if network == "unix" {
		if err := removeStale(address); err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
	}
	var ln net.Listener
	var err error
	if network == "unix" && p.hasMode {
		old := syscall.Umask(restrictiveUmask)
		ln, err = net.Listen(network, address)
		syscall.Umask(old)
	} else {
		ln, err = net.Listen(network, address)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The master decides when the file goes, not Close: on an upgrade
		// the socket lives on in the next master.
		ul.SetUnlinkOnClose(false)
	}
	if tl, ok := ln.(*net.TCPListener); ok {
		// Accepted connections inherit TCP_NODELAY from the listening
		// socket on Linux. Go's own workers set it per connection, but an
		// exec'd program may not, and Nagle then holds a response written
		// in two pieces until the client's delayed ACK (about 40ms).
		if err := setNoDelay(tl); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: TCP_NODELAY: %w", addr, err)
		}
	}
	f, err := dupListener(ln)
	ln.Close() // the dup in f keeps the socket open
	if err != nil {
		return nil, fmt.Errorf("listen %s: dup: %w", addr, err)
	}
	s := &Socket{Addr: addr, File: f}
	if network == "unix" {
		s.unixPath = address
		s.unixIno = inode(address)
		if err := s.applyPerms(p); err != nil {
			s.Close()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
	}
	return s, nil
}

// Close closes the socket and, for a unix socket, removes its file when it
// is still the one this process bound.
func (s *Socket) Close() error {
	if s.unixPath != "" && s.unixIno != 0 && inode(s.unixPath) == s.unixIno {
		os.Remove(s.unixPath)
	}
	return s.File.Close()
}

// Release closes this process's fd without removing a unix socket file:
// another process (the next master) still serves it.
func (s *Socket) Release() error {
	return s.File.Close()
}

func inode(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return 0
	}
	return st.Ino
}

// removeStale removes path when it is a unix socket nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w (another process accepts on it)", path, syscall.EADDRINUSE)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	return os.Remove(path)
}

// dupListener duplicates ln's socket into an *os.File made by os.NewFile.
//
// Not ln.File(): the file it returns switches its descriptor to blocking
// mode when Fd is called, and os/exec calls Fd on every ExtraFiles entry.
// The blocking flag belongs to the open file description, which every
// worker shares, so each spawn would put the running workers' listening
// sockets into blocking mode: their accept then sits in the kernel, and
// closing the fd to drain no longer stops it from taking one more
// connection. A file from os.NewFile keeps the descriptor's mode.
func dupListener(ln net.Listener) (*os.File, error) {
	nfd, err := DupFD(ln)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), ln.Addr().String()), nil
}

// DupFD returns a new close-on-exec descriptor of ln's socket, leaving
// the open file description's mode (non-blocking) as it is.
func DupFD(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	return nfd, nil
}

func setNoDelay(tl *net.TCPListener) error {
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}); err != nil {
		return err
	}
	return serr
}
