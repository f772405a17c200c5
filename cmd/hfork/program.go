package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hfork/hfork/engine"
	"github.com/hfork/hfork/hclconfig"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

// Program is the hfork command line: flags in, exit code out.
type Program struct {
	stdout, stderr io.Writer

	file   string
	test   bool
	dump   bool
	signal string
	// restartListener is the LISTENER of `-s restart LISTENER`.
	restartListener string
	json            bool
	wait            bool
	version         bool
}

// NewProgram returns a program writing to the given streams.
func NewProgram(stdout, stderr io.Writer) *Program {
	return &Program{stdout: stdout, stderr: stderr}
}

const usage = `usage: hfork [-f FILE] [-t | -T | -s SIGNAL | -s reload|rollback [--wait] | -s status [--json] | -s plan | -s restart [LISTENER] | -v]

  -f FILE    configuration file (default server.hcl)
  -t         test the configuration and exit
  -T         test the configuration, then print it with every default filled in
  -s SIGNAL  send a signal to the running master found through the pidfile:
             reload | reopen | quit | stop | upgrade
  -s rollback  apply the config that was live before the last reload
             again (kept by the master; the file is not read), like reload
  -s status  print the running master's live config, listeners, workers,
             draining generations and last reload and upgrade
  -s plan    ask the running master what a reload to FILE would do, and
             which open connections it would drain; applies nothing
  -s restart [LISTENER]
             replace the workers of LISTENER (default: every app and exec
             listener) one at a time, each new one ready before the old one
             drains
  --json     with -s status: the same as JSON (schema in the README)
  --wait     with -s reload or rollback: once the old workers are gone, print what their
             drain did per listener; exit 3 if a connection was cut
  -v         print the version and exit

Signals to the master: HUP reload (app and exec workers restart on the
code on disk even when the config is unchanged), QUIT graceful stop, TERM fast stop,
INT immediate stop, USR1 reopen logs, USR2 binary upgrade,
WINCH stop workers (keep sockets), TTIN / TTOU one worker more / fewer.
`

// ParseFlags reads the command line.
func (p *Program) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("hfork", flag.ContinueOnError)
	fs.SetOutput(p.stderr)
	fs.Usage = func() { fmt.Fprint(p.stderr, usage) }
	fs.StringVar(&p.file, "f", "server.hcl", "")
	fs.BoolVar(&p.test, "t", false, "")
	fs.BoolVar(&p.dump, "T", false, "")
	fs.StringVar(&p.signal, "s", "", "")
	fs.BoolVar(&p.json, "json", false, "")
	fs.BoolVar(&p.wait, "wait", false, "")
	fs.BoolVar(&p.version, "v", false, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case p.signal == "restart" && fs.NArg() == 1:
		p.restartListener = fs.Arg(0)
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// Run runs the command and returns its exit code.
func (p *Program) Run(argv []string) int {
	if err := p.ParseFlags(argv[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(p.stderr, "hfork: %v\n", err)
		return 2
	}
	if p.version {
		fmt.Fprintf(p.stdout, "hfork %s\n", Version)
		return 0
	}
	cfg, files, ok := p.load()
	if !ok {
		return 1
	}
	switch {
	case p.signal != "":
		return p.sendSignal(cfg)
	case p.dump || p.test:
		if !p.checkAccess(cfg, files) {
			return 1
		}
		fmt.Fprintf(p.stderr, "hfork: configuration file %s test is successful\n", p.file)
		if p.dump {
			p.stdout.Write(hclconfig.Format(cfg))
		}
		return 0
	}
	return p.serve(argv, cfg)
}

// load reads and validates the config, printing every diagnostic.
func (p *Program) load() (hclconfig.Config, map[string]*hcl.File, bool) {
	src, err := os.ReadFile(p.file)
	if err != nil {
		fmt.Fprintf(p.stderr, "hfork: cannot read configuration: %v\n", unwrapPathError(err))
		return hclconfig.Config{}, nil, false
	}
	cfg, files, diags := hclconfig.Parse(p.file, src)
	if len(diags) > 0 {
		hclconfig.WriteDiagnostics(p.stderr, files, diags, colorOK(p.stderr))
	}
	if diags.HasErrors() {
		fmt.Fprintf(p.stderr, "hfork: configuration file %s test failed\n", p.file)
		return hclconfig.Config{}, nil, false
	}
	return cfg, files, true
}

// checkAccess runs the file-system checks of -t and -T: what the master
// and the workers will have to open, as whom, printed like the config's
// own diagnostics.
func (p *Program) checkAccess(cfg hclconfig.Config, files map[string]*hcl.File) bool {
	diags := hclconfig.CheckAccess(cfg, files)
	if len(diags) > 0 {
		hclconfig.WriteDiagnostics(p.stderr, files, diags, colorOK(p.stderr))
	}
	if diags.HasErrors() {
		fmt.Fprintf(p.stderr, "hfork: configuration file %s test failed\n", p.file)
		return false
	}
	return true
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// colorOK: colour only on a terminal, and never when NO_COLOR is set.
func colorOK(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

var signals = map[string]syscall.Signal{
	"reload":  syscall.SIGHUP,
	"reopen":  syscall.SIGUSR1,
	"quit":    syscall.SIGQUIT,
	"stop":    syscall.SIGTERM,
	"upgrade": syscall.SIGUSR2,
}

// inspections are the -s commands that ask the master over its control
// socket and send no signal.
var inspections = map[string]func(*Program, hclconfig.Config) int{
	"status":   (*Program).status,
	"plan":     (*Program).plan,
	"rollback": (*Program).rollback,
	"restart":  (*Program).restart,
}

func (p *Program) sendSignal(cfg hclconfig.Config) int {
	_, inspect := inspections[p.signal]
	sig, ok := signals[p.signal]
	if !ok && !inspect {
		fmt.Fprintf(p.stderr, "hfork: unknown signal %q (want reload, rollback, reopen, quit, stop, upgrade, status, plan or restart)\n", p.signal)
		return 2
	}
	if cfg.Pidfile == "" {
		fmt.Fprintf(p.stderr, "hfork: no pidfile configured in %s: cannot find the master\n", p.file)
		return 1
	}
	run, err := engine.FindMaster(cfg.Pidfile)
	if err != nil {
		fmt.Fprintf(p.stderr, "hfork: %v\n", err)
		return 1
	}
	if inspect {
		return inspections[p.signal](p, cfg)
	}
	pid := run.Pid
	switch {
	case run.Upgrading:
		fmt.Fprintf(p.stderr, "hfork: a binary upgrade is under way: master pid %d (%s%s) is in charge until the new master is ready\n", pid, cfg.Pidfile, engine.OldbinSuffix)
	case run.Draining != 0:
		fmt.Fprintf(p.stderr, "hfork: two masters run: pid %d is in charge, pid %d (%s%s) is draining after an upgrade\n", pid, run.Draining, cfg.Pidfile, engine.OldbinSuffix)
	}
	if p.signal == "reload" {
		if code, done := p.reloadAndWait(cfg, pid); done {
			return code
		}
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(p.stderr, "hfork: signal %s to pid %d: %v\n", p.signal, pid, err)
		return 1
	}
	fmt.Fprintf(p.stdout, "hfork: sent %s to master pid %d\n", p.signal, pid)
	return 0
}

// restart asks the master over its control socket for a rolling restart
// of one listener (or of every app and exec listener); no signal does this.
func (p *Program) restart(cfg hclconfig.Config) int {
	if p.restartListener != "" {
		if _, ok := cfg.Listener(p.restartListener); !ok {
			fmt.Fprintf(p.stderr, "hfork: no listener %q in %s\n", p.restartListener, p.file)
			return 1
		}
	}
	out, err := engine.ControlRestart(engine.ControlPath(cfg.Pidfile), p.restartListener)
	if err != nil {
		fmt.Fprintf(p.stderr, "hfork: restart: %v\n", err)
		return 1
	}
	fmt.Fprintln(p.stdout, out)
	return 0
}

// reloadAndWait asks the master over its control socket to reload and
// prints the outcome; done is false when there is no control socket.
func (p *Program) reloadAndWait(cfg hclconfig.Config, pid int) (code int, done bool) {
	if p.wait {
		return p.reloadReceipt(cfg), true
	}
	out, err := engine.ControlReload(engine.ControlPath(cfg.Pidfile))
	if errors.Is(err, engine.ErrNoControl) {
		return 0, false
	}
	if out != "" {
		fmt.Fprintln(p.stdout, out)
	}
	if err != nil {
		fmt.Fprintf(p.stderr, "hfork: %v\n", err)
		return 1, true
	}
	return 0, true
}

func (p *Program) serve(argv []string, cfg hclconfig.Config) int {
	logging := engine.NewLogging()
	if err := logging.Apply(cfg.Log); err != nil {
		fmt.Fprintf(p.stderr, "hfork: %v\n", err)
		return 1
	}
	dir, _ := os.Getwd()
	path := p.file
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	m, err := engine.New(engine.Options{ConfigPath: path, Config: cfg, Argv: argv, Dir: dir, Version: Version, Logging: logging})
	if err != nil {
		// In the log too, where the operator of a running service looks;
		// when the log is stderr, once is enough.
		if logging.Out.ToFile() {
			logging.Log.Error("cannot start", "err", err)
		}
		fmt.Fprintf(p.stderr, "hfork: cannot start: %v\n", err)
		return 1
	}
	return m.Run()
}
