package engine

import (
	"encoding/json"
	"errors"
	"fmt"
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
func controlRestart(enc *json.Encoder, post func(any), arg string) {
	if arg != "" && !hclconfig.ValidName(arg) {
		enc.Encode(controlReply{Error: fmt.Sprintf("%q cannot name a listener", arg)})
		return
	}
	req := restartReq{Listener: arg, Reply: make(chan restartAnswer, 1)}
	post(req)
	a := <-req.Reply
	if a.err != nil {
		enc.Encode(controlReply{Error: a.err.Error()})
		return
	}
	enc.Encode(controlReply{Restart: &a.text})
}

// ControlRestart asks the master listening on path for a rolling restart
// of listener ("" for every app and exec listener) and returns its answer.
func ControlRestart(path, listener string) (string, error) {
	conn, dec, err := dialControl(path, strings.TrimSpace("restart "+listener))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	r, err := nextReply(dec)
	if err != nil {
		return "", err
	}
	if r.Restart == nil {
		return "", errors.New("control socket: the answer has no restart")
	}
	return "restarting:\n" + *r.Restart, nil
}
