package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/listeners"
	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/reload"
)

// tickEvery is how often the loop enforces timeouts and reaps.
const tickEvery = 100 * time.Millisecond

// ErrShuttingDown answers requests that arrive while the master stops.
var ErrShuttingDown = errors.New("master is shutting down")

type stopMode int

const (
	running stopMode = iota
	graceful
	fast
	immediate
)

// Options configure a master.
type Options struct {
	// ConfigPath is the config file as given with -f.
	ConfigPath string
	// Config is the already loaded and validated config.
	Config hclconfig.Config
	// Argv and Dir are how this master was started, for a binary upgrade.
	Argv []string
	Dir  string
	// Version is reported in logs.
	Version string
	Logging *Logging
}

// Master is the running master process.
type Master struct {
	opts    Options
	log     *slog.Logger
	logging *Logging
	cfg     hclconfig.Config

	sockets *listeners.Set
	spawner *pool.Spawner
	output  *pool.Output
	notify  *pool.NotifySocket
	watcher *reload.Watcher
	systemd *sdNotifier

	pools    map[string]*pool.Pool // current generation by listener name
	retiring []*pool.Pool
	gen      int

	events chan any
	sigs   chan os.Signal

	op      *reloadOp
	pending []reload.Request
	upg     *upgradeOp
	parent  *parentLink // set when this master was started by an upgrade

	stopping stopMode
	// handedOver: an upgrade succeeded; the sockets (and unix socket
	// files) now belong to the new master.
	handedOver bool
	exitCode   int
	paused     bool // WINCH: workers stopped, sockets kept
	ready      bool // every pool was ready once
	pidfile    string
	control    *control
	lastPlan   atomic.Value // string: the plan of the last committed reload
}

// New prepares a master: it adopts inherited sockets and opens the others,
// but starts nothing.
func New(opts Options) (*Master, error) {
	m := &Master{
		opts:    opts,
		logging: opts.Logging,
		log:     opts.Logging.Log,
		cfg:     opts.Config,
		pools:   map[string]*pool.Pool{},
		events:  make(chan any, 4096),
		sigs:    make(chan os.Signal, 64),
		systemd: newSDNotifier(),
	}
	// Watch signals before anything else: a signal that arrives while the
	// master starts waits in the channel instead of being lost (USR1) or
	// killing it (HUP, TERM).
	signal.Notify(m.sigs, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCHLD)
	m.parent = takeParentLink()
	inherited, err := listeners.Inherited()
	if err != nil {
		return nil, err
	}
	if m.parent == nil && m.cfg.Pidfile != "" {
		if pid, err := ReadPidfile(m.cfg.Pidfile); err == nil {
			return nil, fmt.Errorf("hfork is already running (pid %d, from pidfile %s)", pid, m.cfg.Pidfile)
		}
	}
	for _, l := range m.cfg.Listeners {
		if err := pool.CheckUser(l); err != nil {
			return nil, err
		}
	}
	m.sockets = listeners.NewSet(inherited)
	if err := m.sockets.Prepare(allBinds(m.cfg)); err != nil {
		m.sockets.CloseAll(false)
		return nil, err
	}
	return m, nil
}

func allBinds(c hclconfig.Config) []listeners.Bind {
	var out []listeners.Bind
	for _, l := range c.Listeners {
		for _, a := range l.Bind {
			out = append(out, listeners.Bind{Addr: a, Mode: l.SocketMode, Owner: l.SocketOwner, Group: l.SocketGroup})
		}
	}
	return out
}

// Run starts the workers and serves until the master is told to stop. It
// returns the process exit code.
func (m *Master) Run() int {
	defer signal.Stop(m.sigs)

	var err error
	m.spawner = pool.NewSpawner()
	m.output = pool.NewOutput(m.logging.Out, m.log)
	if m.notify, err = pool.ListenNotify(func(ev pool.NotifyEvent) { m.events <- ev }); err != nil {
		m.log.Error("cannot start", "err", err)
		return 1
	}
	defer m.notify.Close()
	m.watcher, err = reload.New(reload.Options{
		Path: m.opts.ConfigPath, Watch: m.cfg.Reload.Watch, Debounce: m.cfg.Reload.Debounce, Log: m.log,
	})
	if err != nil {
		m.log.Error("cannot start", "err", err)
		return 1
	}
	defer m.watcher.Close()
	m.pidfile = m.cfg.Pidfile
	if m.pidfile != "" && m.parent == nil {
		if err := WritePidfile(m.pidfile, os.Getpid()); err != nil {
			m.log.Error("cannot start", "err", err)
			return 1
		}
		m.listenControl()
	}
	defer func() { m.control.close() }()

	m.log.Info("hfork master starting", "pid", os.Getpid(), "version", m.opts.Version, "config", m.cfg.File,
		"listeners", len(m.cfg.Listeners), "upgrade", m.parent != nil)
	for _, l := range m.cfg.Listeners {
		// A master started by an upgrade must not retry workers that
		// fail to boot: it fails, and the old master keeps serving.
		p, err := m.newPool(l, m.parent != nil)
		if err != nil {
			m.log.Error("cannot start", "listener", l.Name, "err", err)
			return 1
		}
		m.pools[l.Name] = p
		p.Start()
	}
	m.systemd.send("STATUS=starting workers")

	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	for !m.finished() {
		select {
		case sig := <-m.sigs:
			m.onSignal(sig.(syscall.Signal))
		case ev := <-m.events:
			m.onEvent(ev)
		case req := <-m.watcher.C():
			m.onReload(req)
		case <-ticker.C:
			m.tick()
		}
	}
	return m.exit()
}

// listenControl opens the control socket next to the pidfile; without one
// `hfork -s reload` falls back to a plain signal.
func (m *Master) listenControl() {
	if m.pidfile == "" {
		return
	}
	c, err := listenControl(ControlPath(m.pidfile),
		func(reply chan<- error) { m.watcher.Trigger("hfork -s reload", reply) },
		func() string { s, _ := m.lastPlan.Load().(string); return s })
	if err != nil {
		m.log.Warn("no control socket; hfork -s reload will not wait for the outcome", "err", err)
		return
	}
	restart := m.requestRestart
	c.restart.Store(&restart)
	m.control = c
}

// newPool creates a pool for l on its sockets (taking references).
func (m *Master) newPool(l hclconfig.Listener, staged bool) (*pool.Pool, error) {
	socks, err := m.sockets.Acquire(l.Bind)
	if err != nil {
		return nil, err
	}
	files := make([]*os.File, len(socks))
	for i, s := range socks {
		files[i] = s.File
	}
	m.gen++
	return pool.New(pool.Config{
		Listener: l, Gen: m.gen, Sockets: files, Notify: m.notify.Addr,
		LogLevel: m.cfg.Log.Level, LogFormat: m.logging.Format,
		Spawner: m.spawner, Output: m.output, Log: m.log, Staged: staged,
	}), nil
}

// allPools is every pool the master supervises: current, staged, retiring.
func (m *Master) allPools() []*pool.Pool {
	out := make([]*pool.Pool, 0, len(m.pools)+len(m.retiring))
	for _, l := range m.cfg.Listeners {
		if p := m.pools[l.Name]; p != nil {
			out = append(out, p)
		}
	}
	if m.op != nil {
		for _, p := range m.op.staged {
			out = append(out, p)
		}
	}
	return append(out, m.retiring...)
}

func (m *Master) onEvent(ev any) {
	now := time.Now()
	switch ev := ev.(type) {
	case upgradeReady:
		if m.upg != nil && m.upg.pid == ev.pid {
			m.upg.ready = true
		}
	case restartReq:
		m.onRestart(ev)
	case pool.NotifyEvent:
		for _, p := range m.allPools() {
			if p.HandleNotify(ev, now) {
				break
			}
		}
	}
	m.progress()
}

func (m *Master) reap() {
	now := time.Now()
	for _, ev := range pool.Reap() {
		if m.upg != nil && m.upg.pid == ev.Pid {
			m.upgradeChildExited(ev)
			continue
		}
		owned := false
		for _, p := range m.allPools() {
			if p.HandleExit(ev, now) {
				owned = true
				break
			}
		}
		if !owned {
			m.log.Debug("reaped a process that was not a worker", "pid", ev.Pid)
		}
	}
}

func (m *Master) tick() {
	m.reap()
	now := time.Now()
	for _, p := range m.allPools() {
		p.Tick(now)
	}
	m.progress()
}

// progress moves whatever waits on workers forward: the first readiness,
// a reload in flight, an upgrade in flight, retiring generations.
func (m *Master) progress() {
	if m.op != nil {
		m.checkReload()
	}
	kept := m.retiring[:0]
	for _, p := range m.retiring {
		if p.Done() {
			m.sockets.Release(p.Listener().Bind)
			m.log.Debug("generation retired", "listener", p.Listener().Name, "gen", p.Gen())
			continue
		}
		kept = append(kept, p)
	}
	clear(m.retiring[len(kept):])
	m.retiring = kept
	if m.parent != nil && m.stopping == running {
		for _, p := range m.pools {
			if err := p.Err(); err != nil {
				m.log.Error("upgrade: workers failed to boot; exiting so the old master keeps serving", "err", err)
				m.exitCode = 1
				m.shutdown(immediate)
				return
			}
		}
	}
	if !m.ready && m.stopping == running && m.allReady() {
		m.ready = true
		m.log.Info("hfork ready", "pid", os.Getpid(), "listeners", len(m.pools))
		m.becameReady()
	}
	if m.upg != nil {
		m.checkUpgrade()
	}
}

func (m *Master) allReady() bool {
	for _, p := range m.pools {
		if !p.Ready() {
			return false
		}
	}
	return true
}

func (m *Master) onSignal(sig syscall.Signal) {
	if sig == syscall.SIGCHLD {
		m.reap()
		m.progress()
		return
	}
	m.log.Info("signal received", "signal", signalName(sig))
	switch sig {
	case syscall.SIGHUP:
		m.watcher.Trigger("signal HUP", nil)
	case syscall.SIGQUIT:
		m.shutdown(graceful)
	case syscall.SIGTERM:
		m.shutdown(fast)
	case syscall.SIGINT:
		m.shutdown(immediate)
	case syscall.SIGUSR1:
		if err := m.logging.Out.Reopen(); err != nil {
			m.log.Error("reopen log file", "err", err)
		}
		for _, p := range m.allPools() {
			p.Signal(syscall.SIGUSR1)
		}
		m.log.Info("log files reopened")
	case syscall.SIGUSR2:
		m.startUpgrade()
	case syscall.SIGWINCH:
		if m.stopping != running {
			return
		}
		m.paused = true
		for _, p := range m.pools {
			p.Drain("WINCH: stopping workers, sockets kept")
		}
	case syscall.SIGTTIN, syscall.SIGTTOU:
		if m.stopping != running {
			return
		}
		m.paused = false
		for _, p := range m.pools {
			n, why := p.Target()+1, "TTIN: one worker more"
			if sig == syscall.SIGTTOU {
				n, why = max(1, p.Target()-1), "TTOU: one worker fewer"
			}
			m.log.Info("scaling", "listener", p.Listener().Name, "workers", n, "reason", why)
			p.Scale(n, why)
		}
	}
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "HUP", syscall.SIGQUIT: "QUIT", syscall.SIGTERM: "TERM", syscall.SIGINT: "INT",
	syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGWINCH: "WINCH",
	syscall.SIGTTIN: "TTIN", syscall.SIGTTOU: "TTOU",
}

func signalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return sig.String()
}

// shutdown stops every pool in the given mode; a harsher mode overrides a
// gentler one already under way.
func (m *Master) shutdown(mode stopMode) {
	if mode <= m.stopping {
		return
	}
	m.stopping = mode
	if !m.handedOver {
		// After a handover systemd follows the new master (MAINPID=); a
		// STOPPING=1 from the old one would read as the service stopping.
		m.systemd.send("STOPPING=1")
	}
	if m.op != nil {
		m.failReload(ErrShuttingDown)
	}
	for _, req := range m.pending {
		reply(req, ErrShuttingDown)
	}
	m.pending = nil
	m.abortUpgrade("master is shutting down")
	for _, p := range m.allPools() {
		switch mode {
		case graceful:
			p.Drain("shutdown")
		case fast:
			p.Stop(false)
		case immediate:
			p.Stop(true)
		}
	}
}

func (m *Master) finished() bool {
	if m.stopping == running {
		return false
	}
	for _, p := range m.allPools() {
		if !p.Done() {
			return false
		}
	}
	return m.upg == nil
}

// exit releases what the master holds and returns the exit code.
func (m *Master) exit() int {
	m.sockets.CloseAll(m.handedOver)
	if m.pidfile != "" {
		RemovePidfile(m.pidfile, os.Getpid())
		RemovePidfile(m.pidfile+".oldbin", os.Getpid())
	}
	m.log.Info("hfork master exited", "pid", os.Getpid())
	return m.exitCode
}

// diagnosticsText renders diagnostics as hfork -t does, without colour.
func diagnosticsText(files map[string]*hcl.File, diags hcl.Diagnostics) string {
	var b bytes.Buffer
	hclconfig.WriteDiagnostics(&b, files, diags, false)
	return b.String()
}
