package engine

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/reload"
)

// ReloadError is a failed reload: what the operator reads from `hfork -s
// reload` and the log.
type ReloadError struct {
	Stage string // "config", "bind", "boot"
	Text  string
}

func (e *ReloadError) Error() string { return "reload failed (" + e.Stage + "): " + e.Text }

// reloadOp is the reload in flight: the new config, its plan, and the
// staged pools that must become ready before anything old is touched.
type reloadOp struct {
	cfg     hclconfig.Config
	plan    Changes
	staged  map[string]*pool.Pool
	replies []chan<- error
	started time.Time
}

func reply(req reload.Request, err error) {
	if req.Reply != nil {
		select {
		case req.Reply <- err:
		default:
		}
	}
}

func (m *Master) onReload(req reload.Request) {
	if m.stopping != running {
		reply(req, ErrShuttingDown)
		return
	}
	if m.op != nil || m.upg != nil {
		// One reload at a time; everything that arrives meanwhile becomes
		// one more reload once this one ends.
		m.pending = append(m.pending, req)
		return
	}
	m.beginReload([]reload.Request{req})
}

func (m *Master) beginReload(reqs []reload.Request) {
	replies := make([]chan<- error, 0, len(reqs))
	for _, r := range reqs {
		if r.Reply != nil {
			replies = append(replies, r.Reply)
		}
	}
	answer := func(err error) {
		for _, r := range replies {
			select {
			case r <- err:
			default:
			}
		}
	}
	start := time.Now()
	m.log.Info("reloading", "reason", reqs[0].Reason, "requests", len(reqs))
	// Certificate files are not part of the config: a reload is also how an
	// operator says renewed ones are in place, whatever the plan.
	for _, p := range m.allPools() {
		p.ReloadCertificates()
	}
	m.systemd.send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))

	src, err := os.ReadFile(m.opts.ConfigPath)
	if err != nil {
		m.log.Error("reload failed; keeping the running config", "err", err)
		answer(&ReloadError{Stage: "config", Text: err.Error()})
		m.systemd.send("READY=1")
		return
	}
	cfg, files, diags := hclconfig.Parse(m.opts.ConfigPath, src)
	if diags.HasErrors() {
		for _, d := range diags {
			at := ""
			if d.Subject != nil {
				at = fmt.Sprintf("%s:%d,%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
			}
			m.log.Error("config error", "at", at, "summary", d.Summary, "detail", d.Detail)
		}
		m.log.Error("reload failed; keeping the running config", "errors", len(diags.Errs()))
		answer(&ReloadError{Stage: "config", Text: diagnosticsText(files, diags)})
		m.systemd.send("READY=1")
		return
	}
	plan := Plan(m.cfg, cfg, PlanOptions{RestartCode: anyManual(reqs)})
	if plan.Empty() && !m.paused {
		m.log.Info("reload: nothing changed")
		m.lastPlan.Store("")
		answer(nil)
		m.systemd.send("READY=1")
		return
	}
	m.log.Info("reload plan\n" + plan.String())
	if err := m.sockets.Prepare(allBinds(cfg)); err != nil {
		m.log.Error("reload failed; keeping the running config", "err", err)
		answer(&ReloadError{Stage: "bind", Text: err.Error()})
		m.systemd.send("READY=1")
		return
	}
	op := &reloadOp{cfg: cfg, plan: plan, staged: map[string]*pool.Pool{}, replies: replies, started: start}
	m.op = op
	for _, ch := range plan.Listeners {
		switch ch.Action {
		case Start, Replace, Rebind:
			p, err := m.newPool(ch.New, true)
			if err != nil {
				m.failReload(&ReloadError{Stage: "bind", Text: err.Error()})
				return
			}
			op.staged[ch.Listener] = p
			p.Start()
		}
	}
	m.checkReload()
}

// checkReload commits the reload once every staged pool is ready, or fails
// it as soon as one cannot boot.
func (m *Master) checkReload() {
	op := m.op
	for _, p := range op.staged {
		if err := p.Err(); err != nil {
			m.failReload(&ReloadError{Stage: "boot", Text: err.Error()})
			return
		}
	}
	for _, p := range op.staged {
		if !p.Ready() {
			return
		}
	}
	m.commitReload()
}

// failReload drains whatever the reload started and keeps the old
// generation serving.
func (m *Master) failReload(err error) {
	op := m.op
	m.op = nil
	for _, p := range op.staged {
		p.Drain("reload failed")
		m.retiring = append(m.retiring, p)
	}
	m.sockets.Sweep()
	m.log.Error("reload failed; keeping the running config", "err", err)
	for _, r := range op.replies {
		select {
		case r <- err:
		default:
		}
	}
	m.systemd.send("READY=1")
	m.nextReload()
}

func (m *Master) commitReload() {
	op := m.op
	m.op = nil
	for _, ch := range op.plan.Listeners {
		old := m.pools[ch.Listener]
		switch ch.Action {
		case Start:
			op.staged[ch.Listener].Promote()
			m.pools[ch.Listener] = op.staged[ch.Listener]
		case Replace, Rebind:
			np := op.staged[ch.Listener]
			np.Promote()
			old.Drain("replaced by gen " + strconv.Itoa(np.Gen()))
			m.retiring = append(m.retiring, old)
			m.pools[ch.Listener] = np
		case Stop:
			old.Drain("listener removed")
			m.retiring = append(m.retiring, old)
			delete(m.pools, ch.Listener)
		case Scale:
			old.Scale(ch.New.Workers, "reload: workers "+strconv.Itoa(ch.Old.Workers)+" -> "+strconv.Itoa(ch.New.Workers))
		case Keep:
			if m.paused {
				old.Scale(ch.New.Workers, "reload after WINCH")
			}
		}
	}
	m.paused = false
	if op.plan.Log {
		if err := m.logging.Apply(op.cfg.Log); err != nil {
			m.log.Error("apply log settings", "err", err)
		}
		for _, p := range m.pools {
			p.SetLog(op.cfg.Log.Level, m.logging.Format)
		}
	}
	if op.plan.Reload {
		if err := m.watcher.SetOptions(op.cfg.Reload.Watch, op.cfg.Reload.Debounce); err != nil {
			m.log.Error("apply reload settings", "err", err)
		}
	}
	if op.plan.Pidfile && m.pidfile != op.cfg.Pidfile {
		if m.pidfile != "" {
			RemovePidfile(m.pidfile, os.Getpid())
		}
		m.pidfile = op.cfg.Pidfile
		if m.pidfile != "" {
			if err := WritePidfile(m.pidfile, os.Getpid()); err != nil {
				m.log.Error("move pidfile", "err", err)
			}
		}
	}
	if err := m.sockets.SetPerms(allBinds(op.cfg)); err != nil {
		m.log.Error("apply unix socket permissions", "err", err)
	}
	m.cfg = op.cfg
	m.lastPlan.Store(op.plan.String())
	m.sockets.Sweep()
	m.log.Info("reload complete", "ms", time.Since(op.started).Milliseconds())
	for _, r := range op.replies {
		select {
		case r <- nil:
		default:
		}
	}
	m.systemd.send("READY=1\nSTATUS=serving")
	m.nextReload()
}

// nextReload starts the reload that requests coalesced into while one was
// in flight.
func (m *Master) nextReload() {
	if len(m.pending) == 0 || m.stopping != running {
		return
	}
	reqs := m.pending
	m.pending = nil
	m.beginReload(reqs)
}

// anyManual reports whether an operator asked (SIGHUP, hfork -s reload)
// rather than only the file watch: then the reload restarts user code.
func anyManual(reqs []reload.Request) bool {
	for _, r := range reqs {
		if r.Manual {
			return true
		}
	}
	return false
}
