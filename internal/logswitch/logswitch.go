// Package logswitch is one process's slog logging with a level and a
// format that change while it runs: the master applies its config's, a
// built-in worker the Commands its master forwards. Loggers derived from
// it (With, WithGroup) keep their attributes across a change.
//
// Invariant: a rejected change changes nothing; level and format are
// checked before either is applied.
package logswitch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lmittmann/tint"
)

// Switch is a process's logging: one level and one format, both
// changeable while it runs, behind loggers that keep their attributes
// across a change.
type Switch struct {
	w     io.Writer
	level slog.LevelVar
	base  atomic.Pointer[baseHandler]
}

// baseHandler boxes the current format's handler so it can be swapped and
// compared by identity.
type baseHandler struct{ h slog.Handler }

// New writes to w at level in format ("json", "text" or "tint").
func New(w io.Writer, level, format string) (*Switch, error) {
	s := &Switch{w: w}
	if err := s.Apply(level, format); err != nil {
		return nil, err
	}
	if s.base.Load() == nil {
		if err := s.setFormat("json"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Logger returns a logger that follows every later change.
func (s *Switch) Logger() *slog.Logger {
	return slog.New(&switchHandler{s: s})
}

// Apply sets level and format, each unless empty; on error nothing
// changes.
func (s *Switch) Apply(level, format string) error {
	var lvl slog.Level
	if level != "" {
		var err error
		if lvl, err = parseLevel(level); err != nil {
			return err
		}
	}
	if format != "" {
		if err := s.setFormat(format); err != nil {
			return err
		}
	}
	if level != "" {
		s.level.Set(lvl)
	}
	return nil
}

func (s *Switch) setFormat(format string) error {
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(s.w, &slog.HandlerOptions{Level: &s.level})
	case "text":
		h = slog.NewTextHandler(s.w, &slog.HandlerOptions{Level: &s.level})
	case "tint":
		h = tint.NewHandler(s.w, &tint.Options{Level: &s.level, TimeFormat: time.DateTime})
	default:
		return fmt.Errorf("log format %q: want json, text or tint", format)
	}
	s.base.Store(&baseHandler{h: h})
	return nil
}

// parseLevel reads debug, info, warn or error.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// switchHandler sends records to the switch's current handler, with the
// attributes and groups it was derived with. Those are replayed on a new
// base once after a format change, not on every record.
type switchHandler struct {
	s     *Switch
	ops   []func(slog.Handler) slog.Handler
	cache atomic.Pointer[derivedHandler]
}

type derivedHandler struct {
	base *baseHandler
	h    slog.Handler
}

func (h *switchHandler) current() slog.Handler {
	b := h.s.base.Load()
	if len(h.ops) == 0 {
		return b.h
	}
	if d := h.cache.Load(); d != nil && d.base == b {
		return d.h
	}
	x := b.h
	for _, op := range h.ops {
		x = op(x)
	}
	h.cache.Store(&derivedHandler{base: b, h: x})
	return x
}

func (h *switchHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.s.level.Level()
}

func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return h.with(func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
}

func (h *switchHandler) with(op func(slog.Handler) slog.Handler) *switchHandler {
	return &switchHandler{s: h.s, ops: append(slices.Clip(h.ops), op)}
}
