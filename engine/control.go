package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrNoControl says no master answers on the control socket.
var ErrNoControl = errors.New("no control socket")

// ControlPath is the control socket that lives next to the pidfile.
func ControlPath(pidfile string) string { return pidfile + ".sock" }

// control is the master's control socket: `hfork -s reload` asks for a
// reload on it and waits for the outcome. Only the master's owner can
// connect (mode 0600), and the master answers only its own uid and root
// (SO_PEERCRED).
type control struct {
	ln   *net.UnixListener
	path string
	ino  uint64
	wg   sync.WaitGroup
	// restart serves "restart [LISTENER]" (restart.go), once set.
	restart atomic.Pointer[func(listener string) (string, error)]
}

// listenControl binds the control socket, replacing a stale one or the one
// of a master this one is taking over from.
func listenControl(path string, trigger func(reply chan<- error), lastPlan func() string) (*control, error) {
	os.Remove(path)
	old := syscall.Umask(0o077)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	c := &control{ln: ln, path: path}
	var st syscall.Stat_t
	if syscall.Stat(path, &st) == nil {
		c.ino = st.Ino
	}
	c.wg.Add(1)
	go c.serve(trigger, lastPlan)
	return c, nil
}

func (c *control) serve(trigger func(reply chan<- error), lastPlan func() string) {
	defer c.wg.Done()
	for {
		conn, err := c.ln.AcceptUnix()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return
			}
			if uid, ok := peerUID(conn); !ok || (uid != os.Geteuid() && uid != 0) {
				// Mode 0600 already keeps others out; this holds even if
				// the file's mode or the directory's were loosened.
				fmt.Fprintf(conn, "error\nrefused: the control socket answers only its owner (uid %d)\n", os.Geteuid())
				return
			}
			switch cmd := strings.TrimSpace(line); {
			case cmd == "restart" || strings.HasPrefix(cmd, "restart "):
				controlRestart(conn, cmd, c.restart.Load())
			case cmd == "reload":
				reply := make(chan error, 1)
				trigger(reply)
				if err := <-reply; err != nil {
					fmt.Fprintf(conn, "error\n%s\n", strings.TrimRight(err.Error(), "\n"))
					return
				}
				fmt.Fprintf(conn, "ok\n%s\n", lastPlan())
			default:
				fmt.Fprintf(conn, "error\nunknown command %q\n", strings.TrimSpace(line))
			}
		}()
	}
}

// peerUID is the uid of the process at the other end, from SO_PEERCRED.
func peerUID(conn *net.UnixConn) (int, bool) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return int(cred.Uid), true
}

func (c *control) close() {
	if c == nil {
		return
	}
	var st syscall.Stat_t
	if syscall.Stat(c.path, &st) == nil && st.Ino == c.ino {
		os.Remove(c.path)
	}
	c.ln.Close()
	c.wg.Wait()
}

// ControlReload asks the master listening on path to reload and returns
// what it answered: the plan applied, or the reason it failed.
func ControlReload(path string) (string, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoControl, err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "reload\n"); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoControl, err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("control socket: %w", err)
	}
	status, rest, _ := strings.Cut(string(b), "\n")
	rest = strings.TrimRight(rest, "\n")
	switch status {
	case "ok":
		if rest == "" {
			rest = "reload complete: nothing changed"
		} else {
			rest = "reload complete:\n" + rest
		}
		return rest, nil
	case "error":
		return "", errors.New(rest)
	}
	return "", fmt.Errorf("control socket: unexpected answer %q", status)
}
