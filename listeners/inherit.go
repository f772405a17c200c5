package listeners

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/hfork/hfork/pool/wire"
)

// Sockets are inherited under systemd's protocol (sd_listen_fds(3)), whose
// names the worker protocol holds: an upgrading hfork master cannot know
// its child's pid before the fork, so it sets wire.EnvUpgrade instead of
// LISTEN_PID.
const firstFD = wire.FirstFD

// Key is the canonical identity of a bind address: two spellings of one
// address ("localhost:80" and "127.0.0.1:80") have one key, and a socket's
// key is computed from its kernel address, so inherited sockets match the
// binds that name them.
func Key(addr string) string {
	network, address := Network(addr)
	if network == "unix" {
		return "unix:" + address
	}
	ta, err := net.ResolveTCPAddr("tcp", address)
	if err != nil {
		return addr
	}
	return tcpKey(ta)
}

func tcpKey(ta *net.TCPAddr) string {
	host := ""
	if ta.IP != nil && !ta.IP.IsUnspecified() {
		host = ta.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// keyOfFD reads the kernel's address of a listening socket.
func keyOfFD(fd int) (string, error) {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return "", err
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return tcpKey(&net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}), nil
	case *syscall.SockaddrInet6:
		return tcpKey(&net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}), nil
	case *syscall.SockaddrUnix:
		return "unix:" + a.Name, nil
	}
	return "", fmt.Errorf("fd %d: unsupported socket family", fd)
}

// Inherited adopts the listening sockets passed to this process by systemd
// (LISTEN_FDS with LISTEN_PID equal to our pid) or by an upgrading master
// (LISTEN_FDS with HFORK_UPGRADE=1). It returns them by Key and clears the
// variables, so children do not see them. No variables, no sockets.
func Inherited() (map[string]*Socket, error) {
	n, _ := strconv.Atoi(os.Getenv(wire.EnvListenFDs))
	pid, _ := strconv.Atoi(os.Getenv(wire.EnvListenPID))
	upgrade := os.Getenv(wire.EnvUpgrade) == "1"
	for _, k := range []string{wire.EnvListenFDs, wire.EnvListenPID, wire.EnvListenFDNames, wire.EnvUpgrade} {
		os.Unsetenv(k)
	}
	if n <= 0 || (!upgrade && pid != os.Getpid()) {
		return nil, nil
	}
	out := make(map[string]*Socket, n)
	for fd := firstFD; fd < firstFD+n; fd++ {
		syscall.CloseOnExec(fd)
		key, err := keyOfFD(fd)
		if err != nil {
			return nil, fmt.Errorf("inherited fd %d: %w", fd, err)
		}
		s := &Socket{Addr: key, File: os.NewFile(uintptr(fd), key)}
		if network, path := Network(key); network == "unix" {
			s.unixPath = path
			s.unixIno = inode(path)
		}
		out[key] = s
	}
	return out, nil
}
