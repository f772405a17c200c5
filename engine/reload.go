package engine

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool"
)

// reloadOp is the reload in flight: the new config, its plan, and the
// staged pools that must become ready before anything old is touched.
type reloadOp struct {
	cfg    hclconfig.Config
	plan   Changes
	staged map[string]*pool.Pool
	// swapping are the live pools swapping in place (swap.go).
	swapping []*pool.Pool
	asks     []reloadAsk
	live     *liveConfig // what becomes live at commit
	started  time.Time
	step     int // TTIN minus TTOU received while staged, for Scale at commit
}

func (m *Master) onReload(req reloadAsk) {
	if m.stopping != running {
		answer([]reloadAsk{req}, failed(ErrShuttingDown))
		return
	}
	if m.op != nil || m.upg != nil {
		// One reload at a time; everything that arrives meanwhile becomes
		// one more reload once this one ends.
		m.pending = append(m.pending, req)
		return
	}
	m.beginReload([]reloadAsk{req})
}

func (m *Master) beginReload(asks []reloadAsk) {
	start := time.Now()
	// end answers a reload that ends before anything was staged.
	end := func(res ReloadResult) {
		m.noteReload(start, res, asks)
		answer(asks, res)
		m.systemd.send("READY=1")
		m.nextReload()
	}
	rollback := asks[0].rollback
	m.log.Info("reloading", "reason", asks[0].reason, "requests", len(asks), "rollback", rollback)
	// Certificate files are not part of the config: a reload is also how an
	// operator says renewed ones are in place, whatever the plan.
	for _, p := range m.allPools() {
		p.ReloadCertificates()
	}
	m.systemd.send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))

	var cfg hclconfig.Config
	var next *liveConfig
	if rollback {
		if m.prev == nil {
			m.log.Error("rollback failed; keeping the running config", "err", errNoPrevious)
			end(failed(errStage("rollback", errNoPrevious)))
			return
		}
		cfg, next = m.prev.cfg, newLive(m.prev.cfg, m.prev.src, m.prev.file, time.Now())
	} else {
		src, err := os.ReadFile(m.opts.ConfigPath)
		if err != nil {
			m.log.Error("reload failed; keeping the running config", "err", err)
			end(failed(errStage("config", err)))
			return
		}
		parsed, files, diags := hclconfig.Parse(m.opts.ConfigPath, src)
		if diags.HasErrors() {
			for _, d := range diags {
				at := ""
				if d.Subject != nil {
					at = fmt.Sprintf("%s:%d,%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
				}
				m.log.Error("config error", "at", at, "summary", d.Summary, "detail", d.Detail)
			}
			m.log.Error("reload failed; keeping the running config", "errors", len(diags.Errs()))
			end(failed(errText("config", diagnosticsText(files, diags))))
			return
		}
		cfg, next = parsed, newLive(parsed, src, m.opts.ConfigPath, time.Now())
	}
	plan := Plan(m.cfg, cfg, PlanOptions{RestartCode: anyManual(asks)})
	if plan.Empty() && !m.paused {
		m.log.Info("reload: nothing changed")
		switch {
		case rollback:
			m.setLive(next, true)
		case next.hash != m.live.hash:
			// Only comments or layout changed: the file's text is live.
			m.live, m.rolledBack = next, false
			m.logLive(false)
		}
		answerReceipts(asks)
		end(ReloadResult{})
		return
	}
	logPlan(m.log, plan)
	if err := m.sockets.Prepare(allBinds(cfg)); err != nil {
		m.log.Error("reload failed; keeping the running config", "err", err)
		end(failed(errStage("bind", err)))
		return
	}
	op := &reloadOp{cfg: cfg, plan: plan, staged: map[string]*pool.Pool{}, asks: asks, started: start, live: next}
	m.op = op
	for _, ch := range plan.Listeners {
		switch ch.Action {
		case Start, Replace, Rebind:
			p, err := m.newPool(ch.New, true)
			if err != nil {
				m.failReload(errStage("bind", err))
				return
			}
			op.staged[ch.Listener] = p
			p.Start()
		}
	}
	m.startSwaps(op)
	m.checkReload()
}

// checkReload commits the reload once every staged pool is ready, or fails
// it as soon as one cannot boot.
func (m *Master) checkReload() {
	op := m.op
	for _, p := range op.staged {
		if err := p.Err(); err != nil {
			m.failReload(errStage("boot", err))
			return
		}
	}
	done, err := swapsDone(op)
	if err != nil {
		m.failReload(errStage("swap", err))
		return
	}
	for _, p := range op.staged {
		if !p.Ready() {
			return
		}
	}
	if !done {
		return
	}
	if !m.roomToDrain(op) {
		return
	}
	m.commitReload()
}

// failReload drains whatever the reload started and keeps the old
// generation serving.
func (m *Master) failReload(err error) {
	op := m.op
	m.op = nil
	m.endSwaps(op, false)
	for _, p := range op.staged {
		p.Drain("reload failed")
		m.retiring = append(m.retiring, p)
	}
	m.sockets.Sweep()
	m.log.Error("reload failed; keeping the running config", "err", err)
	m.noteReload(op.started, failed(err), op.asks)
	answer(op.asks, failed(err))
	m.systemd.send("READY=1")
	m.nextReload()
}

func (m *Master) commitReload() {
	op := m.op
	m.op = nil
	var retired []*pool.Pool // the generations this reload drains
	swaps := m.endSwaps(op, true)
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
			retired = append(retired, old)
			m.pools[ch.Listener] = np
		case Stop:
			old.Drain("listener removed")
			m.retiring = append(m.retiring, old)
			retired = append(retired, old)
			delete(m.pools, ch.Listener)
		case Scale:
			n := max(1, ch.New.Workers+op.step)
			old.Scale(n, "reload: workers "+strconv.Itoa(ch.Old.Workers)+" -> "+strconv.Itoa(n))
		case Swap:
			if n := max(1, ch.New.Workers+op.step); m.paused || n != ch.Old.Workers {
				old.Scale(n, "reload: workers "+strconv.Itoa(ch.Old.Workers)+" -> "+strconv.Itoa(n))
			}
		case Keep:
			if m.paused {
				old.Scale(ch.New.Workers, "reload after WINCH")
			}
		}
	}
	m.paused = false
	m.logDraining(retired)
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
	if op.plan.Metrics {
		m.stopMetrics()
		if err := m.startMetrics(op.cfg.Metrics.Bind); err != nil {
			m.log.Error("apply metrics settings", "err", err)
		}
	}
	m.cfg = op.cfg
	m.setLive(op.live, op.asks[0].rollback)
	m.sockets.Sweep()
	m.log.Info("reload complete", "ms", time.Since(op.started).Milliseconds())
	res := ReloadResult{Plan: op.plan.String() + swapLines(swaps)}
	m.noteReload(op.started, res, op.asks)
	m.hist.lastReload.Swaps = swaps
	answer(op.asks, res)
	m.awaitReceipt(op.asks, retired, swaps)
	m.systemd.send("READY=1\nSTATUS=serving")
	m.nextReload()
}

// nextReload starts the reload that requests coalesced into while one was
// in flight.
func (m *Master) nextReload() {
	if len(m.pending) == 0 || m.stopping != running {
		return
	}
	// Reloads coalesce, and rollbacks; a rollback and a reload do not:
	// each applies a different config.
	n := 1
	for n < len(m.pending) && m.pending[n].rollback == m.pending[0].rollback {
		n++
	}
	reqs := m.pending[:n:n]
	m.pending = m.pending[n:]
	m.beginReload(reqs)
}

// anyManual reports whether an operator asked (SIGHUP, hfork -s reload)
// rather than only the file watch: then the reload restarts user code.
func anyManual(asks []reloadAsk) bool {
	for _, a := range asks {
		if a.manual {
			return true
		}
	}
	return false
}
