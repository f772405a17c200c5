package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/hfork/hfork/hclconfig"
)

// restartReq asks the master's loop for a rolling restart of one listener,
// or of every listener that runs user code when Listener is "".
type restartReq struct {
	Listener string
	Reply    chan restartAnswer
}

type restartAnswer struct {
	text string
	err  error
}

// requestRestart is the control socket's way into the loop.
func (m *Master) requestRestart(listener string) (string, error) {
	req := restartReq{Listener: listener, Reply: make(chan restartAnswer, 1)}
	m.events <- req
	a := <-req.Reply
	return a.text, a.err
}

// onRestart starts the rolling restart; it runs on the loop.
func (m *Master) onRestart(req restartReq) {
	answer := func(text string, err error) { req.Reply <- restartAnswer{text, err} }
	if m.stopping != running {
		answer("", ErrShuttingDown)
		return
	}
	if m.op != nil {
		answer("", errors.New("a reload is in flight; restart once it is done"))
		return
	}
	var names []string
	if req.Listener != "" {
		if _, ok := m.cfg.Listener(req.Listener); !ok {
			answer("", fmt.Errorf("no listener %q", req.Listener))
			return
		}
		names = []string{req.Listener}
	} else {
		for _, l := range m.cfg.Listeners {
			if RunsCode(l) {
				names = append(names, l.Name)
			}
		}
		if len(names) == 0 {
			answer("", errors.New("no listener runs user code (app or exec); name one to restart it"))
			return
		}
	}
	var b strings.Builder
	for _, name := range names {
		p := m.pools[name]
		if p == nil {
			continue
		}
		n := p.Restart()
		m.log.Info("rolling restart", "listener", name, "workers", n)
		fmt.Fprintf(&b, "  restart  listener %q: %d workers, one at a time (each replacement ready before the old one drains)\n", name, n)
	}
	answer(strings.TrimSuffix(b.String(), "\n"), nil)
}

// controlRestart answers a control socket's "restart [LISTENER]" line.
func controlRestart(conn net.Conn, line string, restartp *func(string) (string, error)) {
	if restartp == nil {
		fmt.Fprintf(conn, "error\nthis master does not restart\n")
		return
	}
	arg := strings.TrimSpace(strings.TrimPrefix(line, "restart"))
	if arg != "" && !hclconfig.ValidName(arg) {
		fmt.Fprintf(conn, "error\n%q cannot name a listener\n", arg)
		return
	}
	out, err := (*restartp)(arg)
	if err != nil {
		fmt.Fprintf(conn, "error\n%s\n", err)
		return
	}
	fmt.Fprintf(conn, "ok\n%s\n", out)
}

// ControlRestart asks the master listening on path for a rolling restart
// of listener ("" for every app and exec listener) and returns its answer.
func ControlRestart(path, listener string) (string, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoControl, err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, strings.TrimSpace("restart "+listener)+"\n"); err != nil {
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
		return "restarting:\n" + rest, nil
	case "error":
		return "", errors.New(rest)
	}
	return "", fmt.Errorf("control socket: unexpected answer %q", status)
}
