package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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

// exitCut is the exit status of `hfork -s reload --wait` when the drain
// cut a connection (idle or stalled at graceful_timeout, or still open at
// shutdown_timeout): the reload happened, but something in flight was lost.
const exitCut = 3

// reloadReceipt reloads, prints the plan at once, then waits for the old
// generations to be gone and prints what their drain did.
func (p *Program) reloadReceipt(cfg hclconfig.Config) int {
	path, ok := p.controlPath(cfg)
	if !ok {
		return 1
	}
	r, err := engine.ControlReloadWait(path, func(plan string) { fmt.Fprintln(p.stdout, plan) })
	if err != nil {
		p.controlFailed(err)
		return 1
	}
	engine.WriteReceipt(p.stdout, r)
	if r.Cut() > 0 {
		fmt.Fprintf(p.stderr, "hfork: %d connections were cut by the drain (stalled at graceful_timeout, or open at shutdown_timeout)\n", r.Cut())
		return exitCut
	}
	return 0
}

// rollback asks the running master to apply its previous config again,
// and answers as -s reload does (with --wait, the receipt too).
func (p *Program) rollback(cfg hclconfig.Config) int {
	path, ok := p.controlPath(cfg)
	if !ok {
		return 1
	}
	named := func(plan string) string { return strings.Replace(plan, "reload complete", "rollback complete", 1) }
	if p.wait {
		r, err := engine.ControlRollbackWait(path, func(plan string) { fmt.Fprintln(p.stdout, named(plan)) })
		if err != nil {
			p.controlFailed(err)
			return 1
		}
		engine.WriteReceipt(p.stdout, r)
		if r.Cut() > 0 {
			fmt.Fprintf(p.stderr, "hfork: %d connections were cut by the drain (stalled at graceful_timeout, or open at shutdown_timeout)\n", r.Cut())
			return exitCut
		}
		return 0
	}
	out, err := engine.ControlRollback(path)
	if out != "" {
		fmt.Fprintln(p.stdout, named(out))
	}
	if err != nil {
		p.controlFailed(err)
		return 1
	}
	return 0
}

// plan asks the running master what it would do with the file given with
// -f. The file passed -t already (else load printed its diagnostics); the
// master parses it again as a reload would, and may still refuse it.
func (p *Program) plan(cfg hclconfig.Config) int {
	path, ok := p.controlPath(cfg)
	if !ok {
		return 1
	}
	pv, err := engine.ControlPlan(path, p.file)
	if err != nil {
		p.controlFailed(err)
		return 1
	}
	if p.json {
		enc := json.NewEncoder(p.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(pv)
	}
	if pv.Diagnostics != "" {
		if !p.json {
			fmt.Fprint(p.stderr, pv.Diagnostics)
		}
		return 1
	}
	if !p.json {
		engine.WritePreview(p.stdout, pv)
	}
	return 0
}
