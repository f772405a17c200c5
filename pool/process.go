package pool

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker"
)

// Exec-class shim protocol: hfork's own binary starts first, sets
// LISTEN_PID to its pid and execs the program (so LISTEN_PID is the
// program's pid, as systemd promises).
const (
	EnvExec     = "HFORK_EXEC"
	EnvExecArgv = "HFORK_EXEC_ARGV"
)

// selfExe is the running binary, even when the file on disk was replaced.
const selfExe = "/proc/self/exe"

// Worker is one worker process as the master sees it.
type Worker struct {
	Pid     int
	Gen     int
	State   State
	Started time.Time

	proc     *os.Process
	control  *os.File // built-in workers: write end of the control pipe
	ctlMu    sync.Mutex
	out, err *tail

	readyAt   time.Time
	lastBeat  time.Time
	watchdog  bool // sent WATCHDOG=1 at least once
	requests  int64
	oldestMS  int64
	oldestReq string
	recycle   bool // asked to be replaced (max_requests, restart)
	// recycleWhy, when set, is the drain reason once the replacement is ready.
	recycleWhy string
	deadline   time.Time // Draining: SIGKILL after this
	killedFor  string    // why the master killed it, for the exit line
}

// baseEnv is the master's environment without the variables that describe
// the master's own sockets and notify socket.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
			worker.EnvWorker, worker.EnvControlFD, EnvExec, EnvExecArgv, EnvPySourceFD:
			continue
		}
		out = append(out, kv)
	}
	return out
}

// spawn starts one worker of p's listener.
func (p *Pool) spawn() (*Worker, error) {
	l := p.cfg.Listener
	n := len(p.cfg.Sockets)
	names := make([]string, n)
	files := make([]*os.File, 0, n+1)
	for i, s := range p.cfg.Sockets {
		names[i] = l.Name
		files = append(files, s)
	}
	env := append(baseEnv(),
		"LISTEN_FDS="+strconv.Itoa(n),
		"LISTEN_FDNAMES="+strings.Join(names, ":"),
		"NOTIFY_SOCKET="+p.cfg.Notify,
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
		env = append(env, EnvExec+"=1", EnvExecArgv+"="+string(argv))
		if l.Timeout > 0 {
			env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(l.Timeout.Microseconds(), 10))
		}
		for k, v := range l.Env {
			env = append(env, k+"="+v)
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
		env = append(env, worker.EnvWorker+"=1", worker.EnvControlFD+"="+strconv.Itoa(3+n))
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

	err = p.cfg.Spawner.Start(cmd)
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
	w := &Worker{Pid: cmd.Process.Pid, Gen: p.cfg.Gen, State: Starting, Started: time.Now(), proc: cmd.Process, control: ctlW}
	w.err = p.cfg.Output.follow(errR, !exe, l.Name, w.Pid, "stderr")
	if outR != nil {
		w.out = p.cfg.Output.follow(outR, false, l.Name, w.Pid, "stdout")
	}
	if ctlW != nil {
		spec := worker.Spec{Listener: l, Gen: p.cfg.Gen, LogLevel: p.cfg.LogLevel, LogFormat: p.cfg.LogFormat}
		w.send(spec)
	}
	return w, nil
}

// ReloadCertificates asks the built-in workers of a TLS listener to read
// their certificate files now rather than at their next poll: a reload
// tells them at once that renewed certificates may be in place.
func (p *Pool) ReloadCertificates() {
	l := p.cfg.Listener
	if l.Class == hclconfig.ClassExec || !l.TLS.Enabled() {
		return
	}
	for _, w := range p.workers {
		w.send(worker.Command{ReloadTLS: true})
	}
}

// send writes one JSON line on the control pipe without blocking the
// caller: a worker that is slow to read must not stall the master.
func (w *Worker) send(v any) {
	if w.control == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	go func() {
		w.ctlMu.Lock()
		defer w.ctlMu.Unlock()
		if w.control != nil {
			w.control.Write(b)
		}
	}()
}

// signal sends sig to the worker (through its pidfd: never another process).
func (w *Worker) signal(sig syscall.Signal) {
	if w.State == Exited {
		return
	}
	w.proc.Signal(sig)
}

// closeControl ends the control pipe once the worker is gone.
func (w *Worker) closeControl() {
	if w.control == nil {
		return
	}
	go func() {
		w.ctlMu.Lock()
		defer w.ctlMu.Unlock()
		w.control.Close()
		w.control = nil
	}()
}

// lastLine is the last line the worker printed, for exit reports. It gives
// the pipe a moment to drain, since the exit can be reaped before the
// reader sees the final line.
func (w *Worker) lastLine() string {
	if w.err != nil {
		select {
		case <-w.err.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
	last := w.err.lastLine()
	if last == "" && w.out != nil {
		last = w.out.lastLine()
	}
	return last
}
