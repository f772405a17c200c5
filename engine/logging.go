package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/internal/logswitch"
)

// LogOutput is the master's log destination: stderr or a file, reopened on
// USR1. Built-in workers' log lines are forwarded through it verbatim, so
// writes are serialized by one mutex and a line is never split.
type LogOutput struct {
	mu   sync.Mutex
	path string
	f    *os.File // nil: stderr
}

func (o *LogOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		return o.f.Write(b)
	}
	return os.Stderr.Write(b)
}

// SetPath switches the destination ("" is stderr).
func (o *LogOutput) SetPath(path string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if path == o.path && (o.f != nil || path == "") {
		return nil
	}
	var f *os.File
	if path != "" {
		var err error
		if f, err = openLog(path); err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
	}
	if o.f != nil {
		o.f.Close()
	}
	o.path, o.f = path, f
	return nil
}

// Reopen closes and reopens the log file (logrotate's rename, then signal).
func (o *LogOutput) Reopen() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.path == "" {
		return nil
	}
	f, err := openLog(o.path)
	if err != nil {
		return fmt.Errorf("reopen log file: %w", err)
	}
	if o.f != nil {
		o.f.Close()
	}
	o.f = f
	return nil
}

// openLog opens a log file for appending. A master runs as root, so when
// the file's directory is writable by anyone else (a shared directory, a
// group-writable log directory, one owned by another user), whoever can
// write there could put a symlink at the log's name pointing at a file
// only root may write, and every line would be appended to it: there the
// last component is opened with O_NOFOLLOW and a symlink is refused. A
// symlink in a directory only the master's user or root can write was
// put there by them, and is followed.
func openLog(path string) (*os.File, error) {
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE
	dir := filepath.Dir(path)
	if othersMayWrite(dir) {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symlink in %s, which others may write: not following it: %w", path, dir, err)
	}
	return f, err
}

// othersMayWrite reports whether someone other than this process's user
// and root may create or replace entries in dir.
func othersMayWrite(dir string) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return true // the open will fail anyway; take no chance
	}
	return st.Mode&0o022 != 0 || (st.Uid != 0 && st.Uid != uint32(os.Geteuid()))
}

// Terminal reports whether the destination is a terminal.
func (o *LogOutput) Terminal() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.f
	if f == nil {
		f = os.Stderr
	}
	return isTerminal(f)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ResolveFormat turns "auto" into what is used: "tint" (coloured) on a
// terminal, "json" otherwise.
func ResolveFormat(format string, terminal bool) string {
	switch format {
	case "auto", "":
		if terminal {
			return "tint"
		}
		return "json"
	}
	return format
}

// Logging is the master's logger and its destination.
type Logging struct {
	Out    *LogOutput
	Log    *slog.Logger
	sw     *logswitch.Switch
	Format string // resolved: what workers are told to use too
}

// NewLogging starts logging to stderr at info level until Apply.
func NewLogging() *Logging {
	out := &LogOutput{}
	format := ResolveFormat("auto", out.Terminal())
	sw, err := logswitch.New(out, "info", format)
	if err != nil {
		panic("engine: default log settings: " + err.Error()) // constant, valid input
	}
	return &Logging{Out: out, Log: sw.Logger(), sw: sw, Format: format}
}

// Apply switches to a config's log settings.
func (l *Logging) Apply(c hclconfig.Log) error {
	if err := l.Out.SetPath(c.File); err != nil {
		return err
	}
	format := ResolveFormat(c.Format, l.Out.Terminal())
	if err := l.sw.Apply(c.Level, format); err != nil {
		return err
	}
	l.Format = format
	return nil
}

// logPlan logs a reload plan one line per action, with the listener, the
// action and what changed as attributes, so a JSON log keeps one event per
// line and each action can be filtered on.
func logPlan(log *slog.Logger, c Changes) {
	for _, ch := range c.Listeners {
		attrs := []any{"listener", ch.Listener, "action", ch.Action.String()}
		switch ch.Action {
		case Scale:
			attrs = append(attrs, "workers_from", ch.Old.Workers, "workers_to", ch.New.Workers)
		case Replace, Rebind, Swap:
			attrs = append(attrs, "changed", ch.Fields)
		}
		log.Info("reload plan", attrs...)
	}
	for _, s := range []struct {
		on   bool
		what string
	}{{c.Log, "log"}, {c.Reload, "reload"}, {c.Pidfile, "pidfile"}} {
		if s.on {
			log.Info("reload plan", "action", "apply", "settings", s.what)
		}
	}
}

// ToFile reports whether the log goes to a file rather than stderr.
func (o *LogOutput) ToFile() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.f != nil
}

// cannotStart logs why the master gives up starting and, when the log is
// a file, says it on stderr too: whoever started hfork (a shell, systemd's
// journal) would otherwise see it exit 1 with nothing said.
func (m *Master) cannotStart(err error, args ...any) {
	m.log.Error("cannot start", append(args, "err", err)...)
	if m.logging.Out.ToFile() {
		prefix := ""
		for i := 0; i+1 < len(args); i += 2 {
			prefix += fmt.Sprintf("%v %v: ", args[i], args[i+1])
		}
		fmt.Fprintf(os.Stderr, "hfork: cannot start: %s%v\n", prefix, err)
	}
}
