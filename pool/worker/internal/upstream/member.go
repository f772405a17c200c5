package upstream

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// nextID numbers members across every group of the process.
var nextID atomic.Int64

// Member is one address of an upstream.
type Member struct {
	ID      int
	Network string // "tcp" or "unix"
	Addr    string // "ip:port", or the socket's path
	// Host is the Host header it gets: the URL's host, or "localhost" for
	// a unix socket, as nginx sends.
	Host string
	// Name is the upstream as configured, with the address when a
	// hostname resolved to it: what the logs call it.
	Name string
	// Sockaddr is Addr for connect(2).
	Sockaddr unix.Sockaddr

	active atomic.Int32 // requests in flight, for least_conn

	mu        sync.Mutex
	fails     int   // failures in the window that began at failStart
	failStart int64 // unix nanos
	downUntil atomic.Int64
	// marked: the passive mark is on (downUntil may have passed);
	// checkDown: the last probe failed.
	marked    atomic.Bool
	checkDown atomic.Bool
}

func newTCPMember(ip net.IP, port int, host, name string) *Member {
	m := &Member{ID: int(nextID.Add(1) - 1), Network: "tcp", Host: host, Name: name,
		Addr: net.JoinHostPort(ip.String(), strconv.Itoa(port))}
	if ip4 := ip.To4(); ip4 != nil {
		a := &unix.SockaddrInet4{Port: port}
		copy(a.Addr[:], ip4)
		m.Sockaddr = a
	} else {
		a := &unix.SockaddrInet6{Port: port}
		copy(a.Addr[:], ip.To16())
		m.Sockaddr = a
	}
	return m
}

func newUnixMember(path, name string) *Member {
	return &Member{ID: int(nextID.Add(1) - 1), Network: "unix", Addr: path, Host: "localhost", Name: name,
		Sockaddr: &unix.SockaddrUnix{Name: path}}
}

// Begin counts a request sent to m; End, its end.
func (m *Member) Begin() { m.active.Add(1) }

// End counts the end of a request Begin counted.
func (m *Member) End() { m.active.Add(-1) }

// Active is how many requests m has in flight.
func (m *Member) Active() int { return int(m.active.Load()) }
