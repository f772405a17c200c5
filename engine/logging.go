package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/lmittmann/tint"

	"github.com/hfork/hfork/hclconfig"
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
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
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
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("reopen log file: %w", err)
	}
	if o.f != nil {
		o.f.Close()
	}
	o.f = f
	return nil
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

// ParseLevel maps a config level name to a slog level.
func ParseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// NewHandler builds a slog handler of a resolved format.
func NewHandler(w io.Writer, format string, level slog.Leveler) slog.Handler {
	switch format {
	case "tint":
		return tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000"})
	case "text":
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	}
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
}

// switchHandler lets a reload change the log format and level of loggers
// already handed out.
type switchHandler struct {
	mu    *sync.RWMutex
	cur   *slog.Handler
	attrs []slog.Attr
	group string
}

func newSwitchHandler(h slog.Handler) *switchHandler {
	return &switchHandler{mu: new(sync.RWMutex), cur: &h}
}

func (s *switchHandler) set(h slog.Handler) {
	s.mu.Lock()
	*s.cur = h
	s.mu.Unlock()
}

func (s *switchHandler) handler() slog.Handler {
	s.mu.RLock()
	h := *s.cur
	s.mu.RUnlock()
	if s.group != "" {
		h = h.WithGroup(s.group)
	}
	if len(s.attrs) > 0 {
		h = h.WithAttrs(s.attrs)
	}
	return h
}

func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.handler().Enabled(ctx, l)
}
func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.handler().Handle(ctx, r)
}
func (s *switchHandler) WithAttrs(a []slog.Attr) slog.Handler {
	c := *s
	c.attrs = append(append([]slog.Attr(nil), s.attrs...), a...)
	return &c
}
func (s *switchHandler) WithGroup(g string) slog.Handler {
	c := *s
	c.group = g
	return &c
}

// Logging is the master's logger and its destination.
type Logging struct {
	Out    *LogOutput
	Log    *slog.Logger
	level  *slog.LevelVar
	sw     *switchHandler
	Format string // resolved
}

// NewLogging starts logging to stderr at info level until Apply.
func NewLogging() *Logging {
	out := &LogOutput{}
	lv := new(slog.LevelVar)
	format := ResolveFormat("auto", out.Terminal())
	sw := newSwitchHandler(NewHandler(out, format, lv))
	return &Logging{Out: out, Log: slog.New(sw), level: lv, sw: sw, Format: format}
}

// Apply switches to a config's log settings.
func (l *Logging) Apply(c hclconfig.Log) error {
	if err := l.Out.SetPath(c.File); err != nil {
		return err
	}
	l.level.Set(ParseLevel(c.Level))
	l.Format = ResolveFormat(c.Format, l.Out.Terminal())
	l.sw.set(NewHandler(l.Out, l.Format, l.level))
	return nil
}
