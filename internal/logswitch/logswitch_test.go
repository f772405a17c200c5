package logswitch

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogSwitchKeepsAttrsAcrossFormats(t *testing.T) {
	var buf bytes.Buffer
	s, err := New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log := s.Logger().With("listener", "web", "pid", 7).WithGroup("g").With("k", 1)
	log.Info("one")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("json line %q: %v", buf.String(), err)
	}
	if rec["listener"] != "web" || rec["msg"] != "one" || rec["g"].(map[string]any)["k"] != 1.0 {
		t.Errorf("json record %v", rec)
	}

	buf.Reset()
	if err := s.Apply("", "text"); err != nil {
		t.Fatal(err)
	}
	log.Info("two")
	if line := buf.String(); !strings.Contains(line, "listener=web pid=7") || !strings.Contains(line, "msg=two ") || !strings.Contains(line, "g.k=1") {
		t.Errorf("text line %q", line)
	}

	buf.Reset()
	if err := s.Apply("", "tint"); err != nil {
		t.Fatal(err)
	}
	log.Info("three")
	if line := buf.String(); !strings.Contains(line, "three") || !strings.Contains(line, "\x1b[") {
		t.Errorf("tint line %q: want colours", line)
	}
}

func TestLogSwitchLevel(t *testing.T) {
	var buf bytes.Buffer
	s, err := New(&buf, "warn", "text")
	if err != nil {
		t.Fatal(err)
	}
	log := s.Logger().With("a", 1)
	log.Info("hidden")
	if buf.Len() != 0 {
		t.Fatalf("info logged at warn: %q", buf.String())
	}
	if err := s.Apply("debug", ""); err != nil {
		t.Fatal(err)
	}
	log.Debug("shown")
	if !strings.Contains(buf.String(), "shown") {
		t.Errorf("debug not logged after the level change: %q", buf.String())
	}
	if !log.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("Enabled(debug) = false after the change")
	}
}

func TestLogSwitchRejectsWithoutChange(t *testing.T) {
	var buf bytes.Buffer
	s, err := New(&buf, "error", "json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ level, format string }{{"loud", ""}, {"", "xml"}, {"debug", "xml"}} {
		if err := s.Apply(c.level, c.format); err == nil {
			t.Errorf("Apply(%+v) accepted", c)
		}
	}
	if s.level.Level() != slog.LevelError {
		t.Errorf("level changed to %v by a rejected command", s.level.Level())
	}
	if _, err := New(&buf, "info", "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}
