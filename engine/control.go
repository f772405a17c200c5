package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
)

// ErrNoControl says no master answers on the control socket.
var ErrNoControl = errors.New("no control socket")

// ControlPath is the control socket that lives next to the pidfile.
func ControlPath(pidfile string) string { return pidfile + ".sock" }

// control is the master's control socket. A client writes one command
// line ("reload", "reload --wait", "rollback", "rollback --wait",
// "status", "plan PATH", "restart [LISTENER]") and reads JSON lines back
// (controlReply): `hfork -s reload` waits for the outcome of its own
// reload, `-s status` and `-s plan` for a copy of the master's view,
// `-s restart` for the restart it started. Only the master's owner can
// connect (mode 0600), and the master answers only its own uid and root
// (SO_PEERCRED).
type control struct {
	ln   *net.UnixListener
	path string
	ino  uint64
	wg   sync.WaitGroup
}

// listenControl binds the control socket, replacing a stale one or the one
// of a master this one is taking over from. post hands a message to the
// master's loop, which answers on the message's own channel.
func listenControl(path string, post func(any)) (*control, error) {
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
	go c.serve(post)
	return c, nil
}

// controlReply is one JSON line the master writes back.
type controlReply struct {
	Error   string   `json:"error,omitempty"`
	Plan    *string  `json:"plan,omitempty"`
	Status  *Status  `json:"status,omitempty"`
	Receipt *Receipt `json:"receipt,omitempty"`
	Preview *Preview `json:"preview,omitempty"`
	Restart *string  `json:"restart,omitempty"`
}

func (c *control) serve(post func(any)) {
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
			enc := json.NewEncoder(conn)
			if uid, ok := peerUID(conn); !ok || (uid != os.Geteuid() && uid != 0) {
				// Mode 0600 already keeps others out; this holds even if
				// the file's mode or the directory's were loosened.
				enc.Encode(controlReply{Error: fmt.Sprintf("refused: the control socket answers only its owner (uid %d)", os.Geteuid())})
				return
			}
			cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch cmd {
			case "reload", "rollback":
				c.reload(enc, post, arg == "--wait", cmd == "rollback")
			case "restart":
				controlRestart(enc, post, arg)
			case "status":
				v := make(chan view, 1)
				post(viewAsk{reply: v})
				st := (<-v).status()
				enc.Encode(controlReply{Status: &st})
			case "plan":
				pv := make(chan Preview, 1)
				post(planAsk{path: arg, reply: pv})
				p := <-pv
				enc.Encode(controlReply{Preview: &p})
			default:
				enc.Encode(controlReply{Error: fmt.Sprintf("unknown command %q", cmd)})
			}
		}()
	}
}

// reload asks for a reload and answers with its own result; with wait,
// then with the receipt of the drain it started: a second reply line.
func (c *control) reload(enc *json.Encoder, post func(any), wait, rollback bool) {
	reply := make(chan ReloadResult, 1)
	// A rollback applies the previous config as it was: it restarts no
	// user code that config did not change.
	ask := reloadAsk{reason: "hfork -s reload", reply: reply, manual: !rollback, rollback: rollback}
	if rollback {
		ask.reason = "hfork -s rollback"
	}
	var receipt chan Receipt
	if wait {
		receipt = make(chan Receipt, 1)
		ask.receipt = receipt
	}
	post(ask)
	res := <-reply
	if res.Err != nil {
		enc.Encode(controlReply{Error: strings.TrimRight(res.Err.Error(), "\n")})
		return
	}
	if err := enc.Encode(controlReply{Plan: &res.Plan}); err != nil || !wait {
		return
	}
	r := <-receipt
	enc.Encode(controlReply{Receipt: &r})
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

// dialControl sends one command line to the master listening on path.
func dialControl(path, cmd string) (net.Conn, *json.Decoder, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoControl, err)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: %w", ErrNoControl, err)
	}
	return conn, json.NewDecoder(conn), nil
}

// nextReply reads one reply; a reply that carries an error is returned as
// that error.
func nextReply(dec *json.Decoder) (controlReply, error) {
	var r controlReply
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("control socket: %w", err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// ControlReload asks the master listening on path to reload and returns
// what it answered: the plan this reload applied, or the reason it failed.
func ControlReload(path string) (string, error) {
	return controlApply(path, "reload")
}

// ControlRollback asks the master on path to apply its previous config
// again and waits for the outcome, like ControlReload.
func ControlRollback(path string) (string, error) {
	return controlApply(path, "rollback")
}

func controlApply(path, cmd string) (string, error) {
	conn, dec, err := dialControl(path, cmd)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	r, err := nextReply(dec)
	if err != nil {
		return "", err
	}
	return planText(r)
}

// planText is how `hfork -s reload` prints a reload's plan.
func planText(r controlReply) (string, error) {
	if r.Plan == nil {
		return "", errors.New("control socket: the answer has no plan")
	}
	if *r.Plan == "" {
		return "reload complete: nothing changed", nil
	}
	return "reload complete:\n" + *r.Plan, nil
}
