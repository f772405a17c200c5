package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/internal/heapprof"
	"github.com/hfork/hfork/listeners"
	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/reload"
)

// tickEvery is how often the loop enforces timeouts and reaps.
const tickEvery = 100 * time.Millisecond

// ErrShuttingDown answers requests that arrive while the master stops.
var ErrShuttingDown = errors.New("master is shutting down")

// ErrHandedOver answers reloads that waited for an upgrade which then
// succeeded: the new master serves the config it read at its start, and a
// reload meant for later edits must go to it.
var ErrHandedOver = errors.New("an upgrade handed over to a new master")

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
	// Signals, when set, is where the master's signals come from (each a
	// syscall.Signal, SIGCHLD included); nil means the process's own
	// (signal.Notify).
	Signals <-chan os.Signal
	// OS, when set, replaces the process effects (start, signal, reap,
	// clock); nil means pool.RealOS.
	OS *pool.OS
}

// Master is the running master process.
type Master struct {
	opts    Options
	log     *slog.Logger
	logging *Logging
	cfg     hclconfig.Config

	sockets *listeners.Set
	os      *pool.OS
	output  *pool.Output
	notify  *pool.NotifyListener
	watcher *reload.Watcher
	systemd *sdNotifier

	pools    map[string]*pool.Pool // current generation by listener name
	retiring []*pool.Pool
	gen      int

	events chan any
	sigs   <-chan os.Signal
	osSigs chan os.Signal // the process's signals, when Options.Signals is nil

	op      *reloadOp
	pending []reloadAsk
	upg     *upgradeOp
	parent  *parentLink // set when this master was started by an upgrade

	stopping stopMode
	// handedOver: an upgrade succeeded; the sockets (and unix socket
	// files) now belong to the new master.
	handedOver bool
	// successor is the new master's pid once an upgrade handed over.
	successor int
	exitCode  int
	paused    bool // WINCH: workers stopped, sockets kept
	ready     bool // every pool was ready once
	started   bool // becameReady ran: every pool was ready or failing once
	pidfile   string
	control   *control
	metrics   *metricsServer
	receipts  []*receiptWait // owed to `hfork -s reload --wait`
	lastPage  time.Time      // the last status page sample
	hist      history
	// live is the config applied now, prev the one before it (what
	// `-s rollback` applies); rolledBack says live came from a rollback.
	live, prev *liveConfig
	rolledBack bool
	heapDir    string // HFORK_HEAP_PROFILE: USR1 writes a heap profile there
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
		sigs:    opts.Signals,
		os:      opts.OS,
		systemd: newSDNotifier(),
		hist:    newHistory(),
		heapDir: heapprof.Start(os.Getenv),
	}
	if m.sigs == nil {
		// Watch signals before anything else: a signal that arrives while
		// the master starts waits in the channel instead of being lost
		// (USR1) or killing it (HUP, TERM).
		m.osSigs = make(chan os.Signal, 64)
		signal.Notify(m.osSigs, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT,
			syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCHLD)
		m.sigs = m.osSigs
	}
	if m.os == nil {
		m.os = pool.RealOS()
		// Only a real master holds keys worth protecting; a test's fake
		// OS leaves the test process as it is.
		if err := pool.ProtectMaster(); err != nil {
			m.log.Warn("the master can be ptraced by its own uid", "err", err)
		}
	}
	m.parent = takeParentLink()
	inherited, err := listeners.Inherited()
	if err != nil {
		return nil, err
	}
	if m.parent == nil && m.cfg.Pidfile != "" {
		if run, err := FindMaster(m.cfg.Pidfile); err == nil {
			return nil, fmt.Errorf("hfork is already running (pid %d, from pidfile %s)", run.Pid, m.cfg.Pidfile)
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
	if c.Metrics.Bind != "" {
		out = append(out, listeners.Bind{Addr: c.Metrics.Bind})
	}
	return out
}

// Run starts the workers and serves until the master is told to stop. It
// returns the process exit code.
func (m *Master) Run() int {
	if m.osSigs != nil {
		defer signal.Stop(m.osSigs)
	}
	if m.os.HardenErr != nil {
		if err := m.os.HardenErr(); err != nil {
			m.log.Warn("workers start with more privileges than they need", "err", err)
		}
	}
	defer m.systemd.close() // last: after exit's STOPPING=1 and log lines
	stop, err := m.start()
	defer stop()
	if le := (*listenerError)(nil); errors.As(err, &le) {
		m.cannotStart(le.err, "listener", le.name)
		return 1
	}
	if err != nil {
		m.cannotStart(err)
		return 1
	}
	return m.loop()
}

// listenerError is a listener that could not start, reported with its
// name as a log attribute.
type listenerError struct {
	name string
	err  error
}

func (e *listenerError) Error() string { return "listener " + e.name + ": " + e.err.Error() }
func (e *listenerError) Unwrap() error { return e.err }

// start opens what the loop listens to and starts every listener's
// workers. stop closes what it opened, also after an error.
func (m *Master) start() (stop func(), err error) {
	var closers []func()
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	m.output = pool.NewOutput(m.logging.Out, m.log)
	if m.notify, err = pool.ListenNotify(func(ev pool.NotifyEvent) { m.events <- ev }); err != nil {
		return stop, err
	}
	closers = append(closers, func() { m.notify.Close() })
	m.watcher, err = reload.New(reload.Options{
		Path: m.opts.ConfigPath, Watch: m.cfg.Reload.Watch, Debounce: m.cfg.Reload.Debounce, Log: m.log,
	})
	if err != nil {
		return stop, err
	}
	closers = append(closers, func() { m.watcher.Close() })
	m.pidfile = m.cfg.Pidfile
	if m.pidfile != "" && m.parent == nil {
		if err := WritePidfile(m.pidfile, os.Getpid()); err != nil {
			return stop, err
		}
		m.listenControl()
	}
	closers = append(closers, func() { m.control.close() })
	if err := m.startMetrics(m.cfg.Metrics.Bind); err != nil {
		return stop, err
	}
	closers = append(closers, m.stopMetrics)

	m.log.Info("hfork master starting", "pid", os.Getpid(), "version", m.opts.Version, "config", m.cfg.File,
		"listeners", len(m.cfg.Listeners), "upgrade", m.parent != nil)
	m.initLive()
	for _, l := range m.cfg.Listeners {
		// A master started by an upgrade must not retry workers that
		// fail to boot: it fails, and the old master keeps serving.
		p, err := m.newPool(l, m.parent != nil)
		if err != nil {
			return stop, &listenerError{name: l.Name, err: err}
		}
		m.pools[l.Name] = p
		p.Start()
	}
	m.systemd.send("STATUS=starting workers")
	return stop, nil
}

// loop is the state owner: it handles one message at a time until the
// master may exit, and returns the exit code.
func (m *Master) loop() int {
	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	for !m.finished() {
		select {
		case sig := <-m.sigs:
			m.onSignal(sig.(syscall.Signal))
		case ev := <-m.events:
			m.onEvent(ev)
		case req := <-m.watcher.C():
			m.onReload(askFromWatcher(req))
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
	c, err := listenControl(ControlPath(m.pidfile), m.post)
	if err != nil {
		m.log.Warn("no control socket; hfork -s reload will not wait for the outcome", "err", err)
		return
	}
	m.control = c
}

// newPool creates a pool for l on its sockets (taking references).
func (m *Master) newPool(l hclconfig.Listener, staged bool) (*pool.Pool, error) {
	// The master reads the keys, as root: workers get them over their
	// control pipe and need no access to the files.
	certs, err := pool.ReadCertificates(l, m.log.With("listener", l.Name))
	if err != nil {
		return nil, err
	}
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
		OS: m.os, Output: m.output, Log: m.log, Staged: staged, Certs: certs,
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
	now := m.os.Now()
	switch ev := ev.(type) {
	case reloadAsk:
		m.onReload(ev)
	case viewAsk:
		ev.reply <- m.takeView()
	case planAsk:
		ev.reply <- m.preview(ev.path)
	case pagePush:
		m.pushPage(ev.data)
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
	now := m.os.Now()
	for _, ev := range m.os.Reap() {
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
	now := m.os.Now()
	for _, p := range m.allPools() {
		p.Tick(now)
	}
	m.pageTick(now)
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
			s := p.Snapshot(time.Now())
			m.hist.retire(s)
			m.settleReceipts(p, s)
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
	if !m.ready && m.stopping == running {
		m.checkStarted()
	}
	if m.upg != nil {
		m.checkUpgrade()
	}
}

// checkStarted says "hfork ready" once every listener is ready. Until
// then, once every listener is either ready or failing (no worker ready
// for longer than boot_timeout), the master has started as far as it can:
// it says which listeners fail and reports ready to systemd, so one
// broken listener does not hold the others hostage to a start timeout.
func (m *Master) checkStarted() {
	if m.allReady() {
		m.ready = true
		m.log.Info("hfork ready", "pid", os.Getpid(), "listeners", len(m.pools))
		if !m.started {
			m.started = true
			m.becameReady()
		} else {
			m.systemd.send("STATUS=serving")
		}
		return
	}
	if m.started || m.parent != nil {
		return
	}
	var failing []string
	for _, l := range m.cfg.Listeners {
		p := m.pools[l.Name]
		switch {
		case p == nil:
		case p.Failing():
			failing = append(failing, l.Name)
		case !p.Ready():
			return
		}
	}
	if len(failing) == 0 {
		return
	}
	m.started = true
	m.log.Error("started with failing listeners", "pid", os.Getpid(), "failing", failing, "listeners", len(m.pools))
	m.becameReady()
	m.systemd.send("STATUS=serving; failing listeners: " + strings.Join(failing, ", "))
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
	m.log.Info("signal received", "signal", wire.SignalName(sig))
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
		m.writeHeapProfile()
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
		step, why := 1, "TTIN: one worker more"
		if sig == syscall.SIGTTOU {
			step, why = -1, "TTOU: one worker fewer"
		}
		scale := func(p *pool.Pool) {
			n := max(1, p.Target()+step)
			m.log.Info("scaling", "listener", p.Listener().Name, "gen", p.Gen(), "workers", n, "reason", why)
			p.Scale(n, why)
		}
		for _, p := range m.pools {
			scale(p)
		}
		if m.op != nil {
			// A staged generation replaces the current one at commit, and a
			// reload's Scale sets the config's count then: both keep the step.
			for _, p := range m.op.staged {
				scale(p)
			}
			m.op.step += step
		}
	}
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
	why := ErrShuttingDown
	if m.successor != 0 {
		why = fmt.Errorf("%w (pid %d), which read the config file when it started; ask it again (hfork -s reload) for edits made since: %w",
			ErrHandedOver, m.successor, ErrShuttingDown)
	}
	answer(m.pending, failed(why))
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

// post hands a message to the loop from another goroutine (the control
// socket's); the loop answers on the message's own reply channel.
func (m *Master) post(msg any) { m.events <- msg }

// writeHeapProfile writes the master's heap profile when HFORK_HEAP_PROFILE
// asks for one (package heapprof).
func (m *Master) writeHeapProfile() {
	if m.heapDir == "" {
		return
	}
	path, err := heapprof.Write(m.heapDir, "master")
	if err != nil {
		m.log.Warn("heap profile not written", "err", err)
		return
	}
	m.log.Info("heap profile written", append([]any{"path", path}, heapprof.Memory()...)...)
}
