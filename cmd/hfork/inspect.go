package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hfork/hfork/engine"
	"github.com/hfork/hfork/hclconfig"
)

// status prints the running master's status, as text or with --json as
// the documented schema. It needs the control socket: a signal cannot
// carry an answer.
func (p *Program) status(cfg hclconfig.Config) int {
	path, ok := p.controlPath(cfg)
	if !ok {
		return 1
	}
	st, err := engine.ControlStatus(path)
	if err != nil {
		p.controlFailed(err)
		return 1
	}
	if p.json {
		enc := json.NewEncoder(p.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return 0
	}
	engine.WriteStatus(p.stdout, st)
	return 0
}

// controlPath is the control socket of the master the config's pidfile
// names.
func (p *Program) controlPath(cfg hclconfig.Config) (string, bool) {
	if cfg.Pidfile == "" {
		fmt.Fprintf(p.stderr, "hfork: no pidfile configured in %s: cannot find the master\n", p.file)
		return "", false
	}
	return engine.ControlPath(cfg.Pidfile), true
}

func (p *Program) controlFailed(err error) {
	if errors.Is(err, engine.ErrNoControl) {
		fmt.Fprintf(p.stderr, "hfork: no master answers on its control socket: %v\n", err)
		return
	}
	fmt.Fprintf(p.stderr, "hfork: %v\n", err)
}
