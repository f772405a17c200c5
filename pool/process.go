package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// selfExe is the running binary, even when the file on disk was replaced.
const selfExe = "/proc/self/exe"

// Worker is one worker process as the master sees it.
type Worker struct {
	Pid     int
	Gen     int
	State   State
	Started time.Time

	control  *wire.Control // built-in workers: the master's end of the control pipe
	out, err *tail

	readyAt  time.Time
	lastBeat time.Time
	watchdog bool      // sent WATCHDOG=1 at least once
	load     wire.Load // from the last heartbeat
	recycle  bool      // asked to be replaced (max_requests, restart)
	// recycleWhy, when set, is the drain reason once the replacement is ready.
	recycleWhy string
	deadline   time.Time // Draining: SIGKILL after this
	killedFor  string    // why the master killed it, for the exit line
	stats      workerStats
	// spec is the listener config the worker runs: its Spec's, or the
	// last swap it confirmed; routes name its metrics' groups of counts
	// (routeKeys).
	spec   hclconfig.Listener
	routes []Route

	// Reaped, waiting for the output pipes to drain (see HandleExit).
	exit    *ExitEvent
	exitAt  time.Time
	exitWas State
}

// spawn starts one worker of p's listener.
func (p *Pool) spawn(now time.Time) (*Worker, error) {
	l := p.cfg.Listener
	n := len(p.cfg.Sockets)
	names := make([]string, n)
	files := make([]*os.File, 0, n+1)
	for i, s := range p.cfg.Sockets {
		names[i] = l.Name
		files = append(files, s)
	}
	env := append(workerEnv(l),
		wire.EnvListenFDs+"="+strconv.Itoa(n),
		wire.EnvListenFDNames+"="+strings.Join(names, ":"),
		wire.EnvNotifySocket+"="+p.cfg.Notify,
	)
	cred, err := credential(l)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", l.Name, err)
	}
	// The credential switch happens in the child before exec, and Go sets
	// Pdeathsig after it (the kernel clears it on a uid change), so the
	// worker starts as the user with no saved root uid to return to.
	cmd := &exec.Cmd{Path: selfExe, ExtraFiles: files, SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}}

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("spawn: %w", err)
	}
	cmd.Stderr = errW
	var ctlR, ctlW *os.File
	exe := l.Class == hclconfig.ClassExec
	if exe {
		argv, _ := json.Marshal(l.Command)
		cmd.Args = []string{"hfork: exec " + l.Name}
		cmd.Dir = l.Dir
		cmd.Stdout = outW
		env = append(env, wire.EnvExec+"=1", wire.EnvExecArgv+"="+string(argv))
		if l.Timeout > 0 {
			env = append(env, wire.EnvWatchdogUsec+"="+strconv.FormatInt(l.Timeout.Microseconds(), 10))
		}
	} else {
		outR.Close()
		outW.Close()
		outR, outW = nil, nil
		cmd.Args = []string{"hfork: worker " + l.Name}
		cmd.Stdout = os.Stdout // access_log "-" goes straight out, not through the master
		if ctlR, ctlW, err = os.Pipe(); err != nil {
			errR.Close()
			errW.Close()
			return nil, fmt.Errorf("spawn: %w", err)
		}
		files = append(files, ctlR)
		cmd.ExtraFiles = files
		env = append(env, wire.EnvWorker+"=1", wire.EnvControlFD+"="+strconv.Itoa(wire.FirstFD+n))
	}
	cmd.Env = env
	if l.App != "" {
		done, err := p.pythonCmd(cmd, env)
		if err != nil {
			errR.Close()
			errW.Close()
			ctlR.Close()
			ctlW.Close()
			return nil, fmt.Errorf("spawn %s: %w", l.Name, err)
		}
		defer done()
	}

	pid, err := p.cfg.OS.Start(cmd)
	errW.Close()
	if outW != nil {
		outW.Close()
	}
	if ctlR != nil {
		ctlR.Close()
	}
	if err != nil {
		errR.Close()
		if outR != nil {
			outR.Close()
		}
		if ctlW != nil {
			ctlW.Close()
		}
		return nil, fmt.Errorf("spawn %s: %w", l.Name, err)
	}
	w := &Worker{Pid: pid, Gen: p.cfg.Gen, State: Starting, Started: now, spec: l, routes: routeKeys(l)}
	w.err = p.cfg.Output.follow(errR, !exe, l.Name, w.Pid, "stderr")
	if outR != nil {
		w.out = p.cfg.Output.follow(outR, false, l.Name, w.Pid, "stdout")
	}
	if ctlW != nil {
		// The Spec is queued before anything else can be: it is the first
		// line the worker reads, whatever the master sends it next.
		w.control = wire.NewControl(ctlW)
		spec := wire.Spec{Listener: l, Gen: p.cfg.Gen, LogLevel: p.cfg.LogLevel, LogFormat: p.cfg.LogFormat}
		if p.cfg.Certs != nil {
			spec.Certificates = p.cfg.Certs.PEM()
			spec.TicketSeed = ticketSeed()
		}
		p.send(w, spec)
	}
	return w, nil
}

// ReloadCertificates reads a TLS listener's certificate files now rather
// than at the next poll, and hands the workers what changed: a reload
// tells the master at once that renewed certificates may be in place.
func (p *Pool) ReloadCertificates() {
	if p.cfg.Certs != nil && p.cfg.Certs.reload(true) {
		p.pushCertificates()
	}
}

// pushCertificates sends the current certificates to every built-in
// worker, starting ones too: their Spec may hold the previous set.
func (p *Pool) pushCertificates() {
	if p.cfg.Listener.Class == hclconfig.ClassExec {
		return
	}
	c := wire.Command{Certificates: p.cfg.Certs.PEM()}
	for _, w := range p.workers {
		p.send(w, c)
	}
}

// send queues one line on w's control pipe; it never blocks, and lines
// arrive in the order they were sent (the Spec first, then a newer set of
// certificates after an older one).
func (p *Pool) send(w *Worker, v any) {
	if w.control == nil {
		return
	}
	if err := w.control.Send(v); errors.Is(err, wire.ErrControlFull) {
		p.log.Warn("worker control command dropped", "pid", w.Pid, "err", err)
	}
}

// signal sends sig to the worker (through the OS seam: never another
// process that took its pid).
func (p *Pool) signal(w *Worker, sig syscall.Signal) {
	if w.State == Exited {
		return
	}
	p.cfg.OS.Signal(w.Pid, sig)
}

// closeControl ends the control pipe once the worker is gone; a write in
// progress is interrupted and what is still queued is dropped.
func (w *Worker) closeControl() {
	if w.control != nil {
		w.control.Close()
	}
}
