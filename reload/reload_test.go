package reload

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := New(Options{Path: "server.hcl", Debounce: -time.Second}); err == nil {
		t.Error("negative debounce accepted")
	}
}

func TestTriggerDelivers(t *testing.T) {
	w, _ := start(t, configFile(t, oldConfig), false)
	reply := make(chan error, 1)
	w.Trigger("signal", reply)
	select {
	case req := <-w.C():
		if req.Reason != "signal" {
			t.Errorf("reason = %q", req.Reason)
		}
		req.Reply <- nil
	case <-time.After(patience):
		t.Fatal("trigger not delivered")
	}
	if err := <-reply; err != nil {
		t.Errorf("reply = %v", err)
	}
	expectNone(t, w)
}

// TestTriggerBurstWhileBusy: nobody reads C while the triggers are made (the engine is in
// the middle of a reload); Trigger must return anyway, and all arrive in order.
func TestTriggerBurstWhileBusy(t *testing.T) {
	w, _ := start(t, configFile(t, oldConfig), true)
	const n = 200
	made := make(chan struct{})
	go func() {
		defer close(made)
		for i := range n {
			w.Trigger(fmt.Sprintf("signal %d", i), nil)
		}
	}()
	select {
	case <-made:
	case <-time.After(patience):
		t.Fatal("Trigger blocked while C was not read")
	}
	for i := range n {
		select {
		case req := <-w.C():
			if want := fmt.Sprintf("signal %d", i); req.Reason != want {
				t.Fatalf("request %d: reason = %q, want %q", i, req.Reason, want)
			}
		case <-time.After(patience):
			t.Fatalf("request %d never arrived", i)
		}
	}
	expectNone(t, w)
}

// TestFileRequestsMergeWhileBusy: changes made while the engine is busy leave one file
// request; the engine reads the newest bytes when it gets to it. Triggers keep their place.
func TestFileRequestsMergeWhileBusy(t *testing.T) {
	path := configFile(t, oldConfig)
	w, logs := start(t, path, true)
	write(t, path, newConfig)
	waitQueued(t, logs, 1)
	w.Trigger("signal", nil)
	write(t, path, oldConfig)
	waitQueued(t, logs, 2) // judged and merged while the first still waits

	want := []string{"file changed: server.hcl", "signal"}
	for _, reason := range want {
		select {
		case req := <-w.C():
			if req.Reason != reason {
				t.Fatalf("reason = %q, want %q", req.Reason, reason)
			}
		case <-time.After(patience):
			t.Fatalf("%q never arrived", reason)
		}
	}
	expectNone(t, w)
}

// waitQueued waits until the watch loop has handed n file requests to the queue, without
// reading C.
func waitQueued(t *testing.T, logs *logBuf, n int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for strings.Count(logs.String(), "reload queued") < n {
		if time.Now().After(deadline) {
			t.Fatalf("file request %d never queued", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSetOptions(t *testing.T) {
	path := configFile(t, oldConfig)
	w, _ := start(t, path, true)

	must(t, w.SetOptions(false, debounce))
	write(t, path, newConfig)
	expectNone(t, w)
	w.Trigger("signal", nil) // manual reloads work while not watching
	if req := expectOne(t, w); req.Reason != "signal" {
		t.Fatalf("reason = %q", req.Reason)
	}

	// Resuming takes the bytes as they are now: the engine has just applied them.
	must(t, w.SetOptions(true, 2*debounce))
	expectNone(t, w)
	write(t, path, oldConfig)
	expectFileRequest(t, w)

	// Calling again with the same settings changes nothing.
	must(t, w.SetOptions(true, debounce))
	write(t, path, newConfig)
	expectFileRequest(t, w)

	if err := w.SetOptions(true, -time.Second); err == nil {
		t.Error("negative debounce accepted")
	}
}

func TestStartWatchingLater(t *testing.T) {
	path := configFile(t, oldConfig)
	w, _ := start(t, path, false)
	write(t, path, newConfig)
	expectNone(t, w)
	must(t, w.SetOptions(true, debounce))
	write(t, path, oldConfig)
	expectFileRequest(t, w)
}

// TestWatchFailureKeepsTriggers: a directory that cannot be watched is a warning, not the
// end of reloads.
func TestWatchFailureKeepsTriggers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "server.hcl")
	w, logs := start(t, path, true)
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("watch failure not logged as a warning:\n%s", logs)
	}
	if err := w.SetOptions(true, debounce); err == nil {
		t.Error("SetOptions hid the watch failure")
	}
	w.Trigger("control", nil)
	if req := expectOne(t, w); req.Reason != "control" {
		t.Fatalf("reason = %q", req.Reason)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	path := configFile(t, oldConfig)
	w, err := New(Options{Path: path, Watch: true, Debounce: debounce})
	must(t, err)

	// Queued and never read: Close must answer them.
	replies := make([]chan error, 3)
	for i := range replies {
		replies[i] = make(chan error, 1)
		w.Trigger("signal", replies[i])
	}
	write(t, path, newConfig) // leaves a pending debounce behind

	closed := make(chan error)
	go func() { closed <- w.Close() }()
	select {
	case err := <-closed:
		must(t, err)
	case <-time.After(patience):
		t.Fatal("Close did not return")
	}

	// Both goroutines are gone: Close waited for them, and the queue closed C on its way out.
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("goroutines still running after Close")
	}
	for range w.C() {
		t.Error("request delivered after Close")
	}
	for i, r := range replies {
		if err := <-r; !errors.Is(err, ErrClosed) {
			t.Errorf("queued reply %d = %v, want ErrClosed", i, err)
		}
	}

	late := make(chan error, 1)
	w.Trigger("signal", late)
	if err := <-late; !errors.Is(err, ErrClosed) {
		t.Errorf("Trigger after Close: reply = %v", err)
	}
	if err := w.SetOptions(true, debounce); !errors.Is(err, ErrClosed) {
		t.Errorf("SetOptions after Close = %v", err)
	}
	must(t, w.Close()) // again
}
