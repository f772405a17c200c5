package engine

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// TestLoggingApplyAndReopen: a reload switches level and format of loggers
// already handed out, and USR1's reopen after a rename writes to the new
// file.
func TestLoggingApplyAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hfork.log")
	l := NewLogging()
	log := l.Log.With("listener", "web")
	if err := l.Apply(hclconfig.Log{Level: "info", Format: "json", File: path}); err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("first")
	if err := l.Apply(hclconfig.Log{Level: "debug", Format: "text", File: path}); err != nil {
		t.Fatal(err)
	}
	log.Debug("second")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Out.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("third")

	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if strings.Contains(string(old), "hidden") {
		t.Errorf("a debug line passed the info level:\n%s", old)
	}
	if !strings.Contains(string(old), `"msg":"first","listener":"web"`) {
		t.Errorf("no JSON line with its attributes before the change:\n%s", old)
	}
	if !strings.Contains(string(old), `level=DEBUG msg=second listener=web`) {
		t.Errorf("no text debug line after the change:\n%s", old)
	}
	if !strings.Contains(string(cur), "msg=third") || strings.Contains(string(old), "third") {
		t.Errorf("after reopen, the line went to the old file:\nold %s\nnew %s", old, cur)
	}
	if l.Format != "text" {
		t.Errorf("Format = %q, want text (what workers are told)", l.Format)
	}
}

// TestLogPlan: the reload plan is one JSON event per action, its message
// on one line and the details in attributes.
func TestLogPlan(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	old := hclconfig.Config{Listeners: []hclconfig.Listener{
		{Name: "a", Bind: []string{":1"}, Workers: 1},
		{Name: "b", Bind: []string{":2"}, Workers: 1, Timeout: time.Second},
		{Name: "gone", Bind: []string{":3"}},
	}}
	new := hclconfig.Config{Log: hclconfig.Log{Level: "debug"}, Listeners: []hclconfig.Listener{
		{Name: "a", Bind: []string{":1"}, Workers: 3},
		{Name: "b", Bind: []string{":2"}, Workers: 1, Timeout: 2 * time.Second},
		{Name: "c", Bind: []string{":4"}},
	}}
	logPlan(log, Plan(old, new, PlanOptions{}))

	type line struct {
		Msg, Listener, Action, Settings string
		Changed                         []string
		WorkersFrom                     int `json:"workers_from"`
		WorkersTo                       int `json:"workers_to"`
	}
	var got []line
	for _, raw := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("not one JSON event per line: %v\n%s", err, buf.String())
		}
		if l.Msg != "reload plan" {
			t.Errorf("msg = %q, want \"reload plan\"", l.Msg)
		}
		got = append(got, l)
	}
	want := []line{
		{Msg: "reload plan", Listener: "a", Action: "scale", WorkersFrom: 1, WorkersTo: 3},
		{Msg: "reload plan", Listener: "b", Action: "replace", Changed: []string{"timeout"}},
		{Msg: "reload plan", Listener: "c", Action: "start"},
		{Msg: "reload plan", Listener: "gone", Action: "stop"},
		{Msg: "reload plan", Action: "apply", Settings: "log"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan lines:\n%+v\nwant\n%+v", got, want)
	}
}

// TestLogRefusesPlantedSymlink: in a directory others may write, a symlink
// at the log's name (pointing at a file only its owner may write) is not
// followed, at start or at USR1; in the master's own directory an
// administrator's symlink is.
func TestLogRefusesPlantedSymlink(t *testing.T) {
	base := t.TempDir()
	victim := filepath.Join(base, "secret")
	if err := os.WriteFile(victim, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	planted := filepath.Join(shared, "hfork.log")
	if err := os.Symlink(victim, planted); err != nil {
		t.Fatal(err)
	}
	var out LogOutput
	if err := out.SetPath(planted); err == nil || !strings.Contains(err.Error(), "not following it") {
		t.Errorf("SetPath through a planted symlink: err = %v, want a refusal", err)
	}
	// Reopen after a rotation: the file was real at start, a symlink now.
	real := filepath.Join(shared, "real.log")
	if err := out.SetPath(real); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(real, real+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, real); err != nil {
		t.Fatal(err)
	}
	if err := out.Reopen(); err == nil {
		t.Errorf("Reopen followed a symlink planted after the rotation")
	}
	out.Write([]byte("a log line\n"))
	if b, _ := os.ReadFile(victim); string(b) != "root only\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}

	own := filepath.Join(base, "own")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(base, "target.log")
	if err := os.Symlink(target, filepath.Join(own, "hfork.log")); err != nil {
		t.Fatal(err)
	}
	var out2 LogOutput
	if err := out2.SetPath(filepath.Join(own, "hfork.log")); err != nil {
		t.Fatalf("a symlink in the master's own directory: %v", err)
	}
	out2.Write([]byte("through the link\n"))
	if b, _ := os.ReadFile(target); string(b) != "through the link\n" {
		t.Errorf("target = %q, want the line written through the symlink", b)
	}
}
