package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hfork/hfork/internal/heapprof"
	"github.com/hfork/hfork/internal/logswitch"
	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker/app"
)

// errMasterGone ends a worker whose control pipe reached EOF.
var errMasterGone = errors.New("master gone: control pipe closed")

// masterGoneExit bounds how long a worker whose master is gone may take to
// close up before it exits regardless.
const masterGoneExit = 2 * time.Second

// Main runs a built-in worker process and returns its exit code: 0 after a
// drain or a fast stop, 1 when the master is gone or serving failed, 2 when
// the worker could not start. cmd/hfork calls it when HFORK_WORKER=1.
//
// Everything the process brings is read here, once: the Spec and later
// Commands from the control pipe, the sockets from LISTEN_FDS, the notify
// socket from NOTIFY_SOCKET, the signals. run does the serving.
func Main() int {
	heapDir := heapprof.Start(os.Getenv)
	// Signals first, before the access log is opened: the master forwards
	// USR1 to starting workers too, and one that arrived before Notify
	// would be lost (Go drops an unwatched SIGUSR1), leaving the worker
	// writing to the file logrotate just renamed. Signals that arrive
	// before run are handled once it runs; a TERM then drains.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1)
	// The master's own signals reach its process group too (a terminal's
	// hangup); they mean nothing to a worker, and their default is to die.
	signal.Ignore(syscall.SIGHUP, syscall.SIGUSR2)

	boot := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("pid", os.Getpid())
	if err := setNotDumpable(); err != nil {
		boot.Error("worker cannot start", "err", err)
		return 2
	}
	fd, err := strconv.Atoi(os.Getenv(wire.EnvControlFD))
	if err != nil || fd < 0 {
		boot.Error("worker cannot start", "err", fmt.Errorf("%s=%q: want an fd", wire.EnvControlFD, os.Getenv(wire.EnvControlFD)))
		return 2
	}
	cf := os.NewFile(uintptr(fd), "control")
	if cf == nil {
		boot.Error("worker cannot start", "err", fmt.Errorf("%s=%d: invalid fd", wire.EnvControlFD, fd))
		return 2
	}
	control := bufio.NewReader(cf)
	spec, err := wire.ReadSpec(control)
	if err != nil {
		boot.Error("worker cannot start", "err", err)
		return 2
	}
	l := spec.Listener
	// The worker starts no programs; nothing else may hold the master's pipe.
	syscall.CloseOnExec(fd)

	logs, err := logswitch.New(os.Stderr, spec.LogLevel, spec.LogFormat)
	if err != nil {
		boot.Warn("worker log settings rejected; using info and json", "err", err)
		logs, _ = logswitch.New(os.Stderr, "info", "json")
	}
	log := logs.Logger().With("listener", l.Name, "pid", os.Getpid(), "gen", spec.Gen, "class", l.Class)
	fail := func(err error) int {
		log.Error("worker cannot start", "err", err)
		return 2
	}

	if _, err := limitsFor(l); err != nil {
		return fail(err)
	}
	procs, set := setMaxProcs(os.Getenv, l.Workers)
	log.Debug("worker GOMAXPROCS", "gomaxprocs", procs, "from_env", !set)

	lns, names, err := inheritListeners(os.Getenv, wire.FirstFD)
	if err != nil {
		return fail(err)
	}
	// The sockets and the notify socket are this process's; a program the
	// worker might start must not believe they are its own.
	notifyAddr := os.Getenv(wire.EnvNotifySocket)
	wire.Unsetenv()
	log.Debug("worker sockets", "names", names)

	var notifier wire.Notifier
	if notifyAddr != "" {
		ns, err := wire.DialNotify(notifyAddr, notifyWait)
		if err != nil {
			return fail(err)
		}
		defer ns.Close()
		notifier = ns
	}

	tab, err := buildTable(l, log, nil)
	if err != nil {
		return fail(err)
	}
	var certs *certset.Set
	if l.TLS.Enabled() {
		if certs, err = certset.New(spec.Certificates, log); err != nil {
			return fail(err)
		}
		spec.Certificates = nil
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	hurry := make(chan time.Duration, 1)
	swaps := make(chan wire.Command, 4)
	go wire.ReadCommands(control, func(c wire.Command, err error) {
		if err != nil {
			log.Warn("worker ignored a control command", "err", err)
			return
		}
		if c.HurryMS > 0 {
			select {
			case hurry <- time.Duration(c.HurryMS) * time.Millisecond:
			default: // one is pending already
			}
		}
		if c.Swap != nil {
			// Applied by the serving goroutine, in order; later commands
			// wait behind a full queue rather than overtake a swap.
			swaps <- c
		}
		if c.Certificates != nil && certs != nil {
			certs.Update(c.Certificates)
		}
		if len(c.Status) > 0 {
			app.PublishStatus(c.Status)
		}
		if c.LogLevel == "" && c.LogFormat == "" {
			return
		}
		if err := logs.Apply(c.LogLevel, c.LogFormat); err != nil {
			log.Warn("worker ignored a control command", "err", err)
			return
		}
		log.Debug("worker log settings changed", "level", c.LogLevel, "format", c.LogFormat)
	}, func(err error) {
		cancel(fmt.Errorf("%w (%v)", errMasterGone, err))
		// Nothing may keep a worker alive without its master.
		time.AfterFunc(masterGoneExit, func() { os.Exit(1) })
	})

	opts := options{
		Listener:  l,
		Listeners: lns,
		Table:     tab,
		Swaps:     swaps,
		Logger:    log,
		Notifier:  notifier,
		Signals:   sigs,
		Hurry:     hurry,
		Started:   func(open func() int64) { settle(ctx, log, open) },

		Certificates: certs,
		TicketSeed:   spec.TicketSeed,
	}
	heapOnUSR1(ctx, heapDir, l.Name, log)
	err = run(ctx, opts)
	writeHeap(heapDir, l.Name, log)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errMasterGone):
		log.Warn("worker exiting", "reason", err.Error())
		return 1
	default:
		log.Error("worker failed", "err", err)
		return 1
	}
}
