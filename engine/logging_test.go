package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
