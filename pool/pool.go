package pool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// Backoff for workers that fail to boot: 100ms, doubling, capped.
const (
	backoffBase = 100 * time.Millisecond
	backoffCap  = 10 * time.Second
	// stableAfter: a worker that dies sooner than this after it became
	// ready failed to boot as far as backoff is concerned (a program run
	// with ready = "started" that exits at once is a crash loop too).
	stableAfter = time.Second
	// fastStopGrace is how long a fast stop waits before SIGKILL.
	fastStopGrace = time.Second
)

// ErrBootFailed is wrapped by a staged pool's failure.
var ErrBootFailed = errors.New("worker failed to boot")

// Config is what a pool needs from the master.
type Config struct {
	Listener hclconfig.Listener
	Gen      int
	Sockets  []*os.File // the listener's sockets, in Bind order
	Notify   string     // NOTIFY_SOCKET for children
	// LogLevel and LogFormat are handed to built-in workers ("json", "text"
	// or "tint").
	LogLevel, LogFormat string
	OS                  *OS
	Output              *Output
	// Certs are a TLS listener's certificates (ReadCertificates), handed
	// to its workers; nil for plain listeners.
	Certs *Certs
	Log   *slog.Logger
	// Staged: a reload's new generation. A boot failure fails the pool
	// instead of being retried.
	Staged bool
}

// Pool is one generation of one listener's workers.
type Pool struct {
	cfg     Config
	log     *slog.Logger
	workers []*Worker
	target  int
	fails   int       // consecutive boot failures
	retryAt time.Time // no spawn before this (backoff)
	failed  error     // staged pool: why it cannot become ready
	rolling []int     // a restart's workers still to replace, in order

	// unreadySince is when the pool last had no ready worker (zero while
	// one is ready); lastFailure is the latest boot failure, the cause a
	// failing listener reports.
	unreadySince time.Time
	lastFailure  string
	fallback     *fallback // running while the listener is failing
	stats        poolStats
	// hurried: Hurry ended its drain early (max_draining_generations).
	hurried bool
	// swap is the swap in flight (swap.go), unswap the rollback of one.
	swap, unswap *swapOp
}

// New returns a pool with no workers; Start spawns them.
func New(cfg Config) *Pool {
	return &Pool{
		cfg: cfg,
		log: cfg.Log.With("listener", cfg.Listener.Name, "gen", cfg.Gen, "class", cfg.Listener.Class),
	}
}

// Listener is the configuration this pool's workers run.
func (p *Pool) Listener() hclconfig.Listener { return p.cfg.Listener }

// Gen is this pool's generation.
func (p *Pool) Gen() int { return p.cfg.Gen }

// Target is how many workers the pool keeps running.
func (p *Pool) Target() int { return p.target }

// Start brings the pool up to its configured number of workers.
func (p *Pool) Start() {
	p.target = p.cfg.Listener.Workers
	p.unreadySince = p.cfg.OS.Now()
	p.fill(p.unreadySince)
}

// Promote turns a staged pool into a live one: from now on failed workers
// are restarted with backoff.
func (p *Pool) Promote() { p.cfg.Staged = false }

// Err is a staged pool's boot failure, or nil.
func (p *Pool) Err() error { return p.failed }

// Ready reports whether target workers are ready and none is starting.
func (p *Pool) Ready() bool {
	n := 0
	for _, w := range p.workers {
		switch {
		case w.State == Starting:
			return false
		case w.State == Ready && !w.recycle:
			n++
		}
	}
	return n >= p.target
}

// Done reports whether every worker has exited.
func (p *Pool) Done() bool { return len(p.workers) == 0 }

// find is the live worker with pid: not one already reaped and waiting
// for its exit report, whose pid the kernel may have handed on.
func (p *Pool) find(pid int) *Worker {
	for _, w := range p.workers {
		if w.Pid == pid && w.exit == nil {
			return w
		}
	}
	return nil
}

// serving counts workers that count towards the target: starting or ready,
// not draining, not waiting to be recycled. A worker that died and waits
// for its last words still holds its place, so that nothing replaces it
// before its exit is accounted (and backed off from).
func (p *Pool) serving() int {
	n := 0
	for _, w := range p.workers {
		state := w.State
		if w.exit != nil {
			state = w.exitWas
		}
		if (state == Starting || state == Ready) && !w.recycle {
			n++
		}
	}
	return n
}

// fill spawns workers until serving() reaches the target, unless a backoff
// or a staged failure forbids it.
func (p *Pool) fill(now time.Time) {
	if p.failed != nil || now.Before(p.retryAt) {
		return
	}
	for p.serving() < p.target {
		w, err := p.spawn(now)
		if err != nil {
			p.stats.bootFailure("spawn")
			p.bootFailed(now, err.Error())
			return
		}
		p.workers = append(p.workers, w)
		p.log.Info("worker starting", "pid", w.Pid, "state", Starting.String())
		if p.cfg.Listener.Class == hclconfig.ClassExec && p.cfg.Listener.Ready == "started" {
			p.ready(w, w.Started)
		}
	}
}

// bootFailed records a failed boot: a staged pool fails, a live one backs off.
func (p *Pool) bootFailed(now time.Time, why string) {
	p.fails++
	p.lastFailure = why
	if p.cfg.Staged {
		if p.failed == nil {
			p.failed = fmt.Errorf("listener %s: %w: %s", p.cfg.Listener.Name, ErrBootFailed, why)
		}
		return
	}
	d := backoffBase << min(p.fails-1, 10)
	d = min(d, backoffCap)
	p.retryAt = now.Add(d)
	p.log.Warn("worker failed to boot; retrying", "reason", why, "failures", p.fails, "retry_in", d.String())
}

func (p *Pool) ready(w *Worker, now time.Time) {
	if w.State != Starting {
		return
	}
	w.State = Ready
	w.readyAt = now
	w.lastBeat = now
	p.log.Info("worker ready", "pid", w.Pid, "state", Ready.String(), "boot_ms", now.Sub(w.Started).Milliseconds())
	p.recovered()
	p.retireRecycled(now)
	p.rollNext(now)
}

// retireRecycled drains workers that asked to be replaced, one for each
// ready worker beyond the target.
func (p *Pool) retireRecycled(now time.Time) {
	ready := 0
	for _, w := range p.workers {
		if w.State == Ready && !w.recycle {
			ready++
		}
	}
	for _, w := range p.workers {
		if ready < p.target {
			return
		}
		if w.State == Ready && w.recycle {
			why, reason := "max_requests reached; replacement ready", "max_requests"
			if w.recycleWhy != "" {
				why, reason = w.recycleWhy, "restart"
			}
			p.stats.restart(reason)
			p.drain(w, why, now)
		}
	}
}

// drain tells a worker to finish its in-flight requests and exit.
func (p *Pool) drain(w *Worker, reason string, now time.Time) {
	if w.State == Draining || w.State == Exited {
		return
	}
	w.State = Draining
	w.deadline = now.Add(p.stopDeadline())
	p.log.Info("worker draining", "pid", w.Pid, "state", Draining.String(), "reason", reason)
	p.signal(w, p.stopSignal())
}

// stopDeadline is how long a draining worker may run before it is
// killed. A built-in worker lets transfers still moving at
// graceful_timeout run until shutdown_timeout, then closes them itself;
// drainReportGrace more lets it report that before the kill. An exec or
// app worker gets graceful_timeout: hfork cannot see its transfers.
func (p *Pool) stopDeadline() time.Duration {
	l := p.cfg.Listener
	if l.Class == hclconfig.ClassExec || l.App != "" {
		return l.GracefulTimeout
	}
	return max(l.ShutdownTimeout, l.GracefulTimeout) + drainReportGrace
}

// drainReportGrace is how long past its own deadline a built-in worker
// has to report its drain and exit.
const drainReportGrace = time.Second

func (p *Pool) stopSignal() syscall.Signal {
	if p.cfg.Listener.Class == hclconfig.ClassExec {
		if s, ok := wire.Signal(p.cfg.Listener.StopSignal); ok {
			return s
		}
	}
	return syscall.SIGTERM
}

// kill ends a worker now and says why.
func (p *Pool) kill(w *Worker, why string) {
	if w.killedFor == "" {
		w.killedFor = why
	}
	p.signal(w, syscall.SIGKILL)
}

// HandleNotify applies a notify datagram; false if pid is not ours.
func (p *Pool) HandleNotify(ev NotifyEvent, now time.Time) bool {
	w := p.find(ev.Pid)
	if w == nil {
		return false
	}
	n := ev.Notice
	if n.Flag(wire.KeyReady) {
		p.ready(w, now)
	}
	if n.Flag(wire.KeyWatchdog) {
		w.watchdog = true
		w.lastBeat = now
	}
	if l, ok := n.Load(); ok {
		if l.Inflight != w.load.Inflight {
			// What the worker is doing, for an operator at debug level (and
			// for tests, which wait on it rather than guess).
			p.log.Debug("worker requests in flight", "pid", w.Pid, "inflight", l.Inflight, "requests", l.Requests)
		}
		w.load = l
	}
	w.stats.parse(n)
	if r, ok := n.Swap(); ok {
		p.swapAnswer(w, r, now)
	}
	if s, ok := n.Status(); ok && p.cfg.Listener.Class == hclconfig.ClassExec {
		p.log.Info("worker status", "pid", w.Pid, "status", s)
	}
	if n.Flag(wire.KeyRecycle) && w.State == Ready && !w.recycle {
		w.recycle = true
		p.log.Info("worker reached max_requests; starting its replacement", "pid", w.Pid, "requests", w.load.Requests)
		p.fill(now)
	}
	if n.Flag(wire.KeyStopping) && w.State == Ready {
		// The worker is leaving on its own; do not count it.
		w.State = Draining
		w.deadline = now.Add(p.stopDeadline())
		p.log.Info("worker draining", "pid", w.Pid, "state", Draining.String(), "reason", "worker said STOPPING=1")
		p.fill(now)
	}
	return true
}

// Tick enforces boot, request and drain timeouts and retries spawns after
// a backoff. The engine calls it a few times a second.
func (p *Pool) Tick(now time.Time) {
	l := p.cfg.Listener
	p.finishExits(now)
	for _, w := range p.workers {
		if p.fails > 0 && w.State == Ready && now.Sub(w.readyAt) >= stableAfter {
			p.fails = 0 // a worker stayed up: the crash loop is over
		}
		switch w.State {
		case Starting:
			if now.Sub(w.Started) > l.BootTimeout {
				p.kill(w, "not ready within boot_timeout "+l.BootTimeout.String())
			}
		case Ready:
			p.checkTimeout(w, now)
		case Draining:
			if now.After(w.deadline) && w.killedFor == "" {
				p.log.Warn("worker still running at its stop deadline; killing it", "pid", w.Pid,
					"oldest_request", w.load.OldestReq)
				p.kill(w, "stop deadline reached")
			}
		}
	}
	p.fill(now)
	p.checkSwap(now)
	p.checkFailing(now)
	if p.cfg.Certs != nil && p.cfg.Certs.poll(now) {
		p.pushCertificates()
	}
}

func (p *Pool) checkTimeout(w *Worker, now time.Time) {
	l := p.cfg.Listener
	if l.Timeout <= 0 {
		return
	}
	silent := now.Sub(w.lastBeat)
	switch l.Class {
	case hclconfig.ClassSync, hclconfig.ClassThread:
		age := w.load.Oldest + silent
		if w.load.Oldest > 0 && age > l.Timeout {
			p.log.Error("worker timeout", "pid", w.Pid, "request", w.load.OldestReq, "age", age.Round(time.Millisecond).String(), "timeout", l.Timeout.String())
			p.kill(w, "worker timeout: request "+w.load.OldestReq+" older than "+l.Timeout.String())
			return
		}
		fallthrough
	case hclconfig.ClassAsync, hclconfig.ClassGevent, hclconfig.ClassEventlet,
		hclconfig.ClassTornado, hclconfig.ClassAiohttp, hclconfig.ClassASGI:
		if silent > l.Timeout {
			p.log.Error("worker stopped reporting", "pid", w.Pid, "silent", silent.Round(time.Millisecond).String(), "timeout", l.Timeout.String())
			p.kill(w, "no heartbeat for "+silent.Round(time.Millisecond).String())
		}
	case hclconfig.ClassExec:
		if w.watchdog && silent > l.Timeout {
			p.log.Error("worker watchdog expired", "pid", w.Pid, "silent", silent.Round(time.Millisecond).String(), "timeout", l.Timeout.String())
			p.kill(w, "watchdog expired")
		}
	}
}

// Scale sets the number of workers: extra ones drain (oldest first),
// missing ones start.
func (p *Pool) Scale(n int, reason string) {
	now := p.cfg.OS.Now()
	p.target = n
	for _, w := range p.workers {
		if p.serving() <= p.target {
			break
		}
		if (w.State == Starting || w.State == Ready) && !w.recycle {
			p.drain(w, reason, now)
		}
	}
	p.retryAt = time.Time{}
	p.fill(now)
}

// Drain stops every worker gracefully; the pool spawns nothing more.
func (p *Pool) Drain(reason string) {
	p.target = 0
	p.stopFallback()
	now := p.cfg.OS.Now()
	for _, w := range p.workers {
		p.drain(w, reason, now)
	}
}

// Stop ends every worker fast (fast: SIGINT to built-in workers, the stop
// signal to exec'd ones, SIGKILL a second later) or at once (SIGKILL).
func (p *Pool) Stop(immediate bool) {
	p.target = 0
	p.stopFallback()
	now := p.cfg.OS.Now()
	for _, w := range p.workers {
		if w.State == Exited {
			continue
		}
		w.State = Draining
		w.deadline = now.Add(fastStopGrace)
		if immediate {
			p.kill(w, "immediate shutdown")
			continue
		}
		if p.cfg.Listener.Class == hclconfig.ClassExec {
			p.signal(w, p.stopSignal())
		} else {
			p.signal(w, syscall.SIGINT)
		}
	}
}

// Signal forwards sig to every built-in worker (USR1: reopen access logs).
// Exec'd programs are not signalled: they may not expect it.
func (p *Pool) Signal(sig syscall.Signal) {
	if p.cfg.Listener.Class == hclconfig.ClassExec {
		return
	}
	for _, w := range p.workers {
		p.signal(w, sig)
	}
}

// SetLog changes built-in workers' log level and format in place.
func (p *Pool) SetLog(level, format string) {
	p.cfg.LogLevel, p.cfg.LogFormat = level, format
	for _, w := range p.workers {
		p.send(w, wire.Command{LogLevel: level, LogFormat: format})
	}
}
