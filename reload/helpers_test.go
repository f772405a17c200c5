package reload

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// debounce is small so tests are quick; every wait below is a multiple of it or a generous
// upper bound, never a speed assertion.
const (
	debounce = 50 * time.Millisecond
	quiet    = 3 * debounce    // how long "no second request" is watched for
	patience = 5 * time.Second // upper bound for a request that must come
)

// TestMain reads a changed file the second time a debounce after the first, as a
// production watcher with that debounce would; tests about the second read set their own.
func TestMain(m *testing.M) {
	minSettle = debounce
	os.Exit(m.Run())
}

// waitLog waits until the watcher logged a line containing want.
func waitLog(t *testing.T, logs *logBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q within %s", want, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuf collects the Watcher's log; it is printed when a test fails.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start makes a Watcher for path with the test debounce and closes it when the test ends.
func start(t *testing.T, path string, watch bool) (*Watcher, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(Options{Path: path, Watch: watch, Debounce: debounce, Log: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("watcher log:\n%s", logs.String())
		}
	})
	return w, logs
}

// configFile makes dir/server.hcl with content and returns its path.
func configFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.hcl")
	write(t, path, content)
	return path
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectOne waits for a request, then checks that no second one follows.
func expectOne(t *testing.T, w *Watcher) Request {
	t.Helper()
	var req Request
	select {
	case req = <-w.C():
	case <-time.After(patience):
		t.Fatalf("no request within %s", patience)
	}
	expectNone(t, w)
	return req
}

// expectNone checks that no request arrives for a while: long enough for a pending
// debounce to run out and its check to finish.
func expectNone(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case req := <-w.C():
		t.Fatalf("unexpected request %q", req.Reason)
	case <-time.After(debounce + quiet):
	}
}

func expectFileRequest(t *testing.T, w *Watcher) {
	t.Helper()
	req := expectOne(t, w)
	if req.Reason != "file changed: server.hcl" {
		t.Errorf("reason = %q, want %q", req.Reason, "file changed: server.hcl")
	}
	if req.Reply != nil {
		t.Errorf("file request has a Reply channel")
	}
}
