package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hfork/hfork/pool"
)

// TestReloadAnswersItsOwnPlan: two reloads answered out of order over the
// control socket; each client prints the plan of the reload it asked for,
// not whichever reload committed last.
func TestReloadAnswersItsOwnPlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hfork.pid.sock")
	asks := make(chan reloadAsk, 2)
	c, err := listenControl(path, func(msg any) { asks <- msg.(reloadAsk) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()

	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { outs[i], errs[i] = ControlReload(path) })
	}
	first, second := <-asks, <-asks
	// The second asker's reload commits first, then the first's.
	answer([]reloadAsk{second}, ReloadResult{Plan: `  replace  listener "b": routes changed`})
	answer([]reloadAsk{first}, ReloadResult{Plan: `  start    listener "a"`})
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
	}
	if outs[0] == outs[1] {
		t.Fatalf("both clients printed the same plan: %q", outs[0])
	}
	for _, out := range outs {
		if !strings.HasPrefix(out, "reload complete:\n") || (!strings.Contains(out, `"a"`) && !strings.Contains(out, `"b"`)) {
			t.Errorf("unexpected answer %q", out)
		}
	}
}

func TestReloadErrorWrapsItsCause(t *testing.T) {
	boot := errStage("boot", fmt.Errorf("listener web: %w: exit status 1", pool.ErrBootFailed))
	if !errors.Is(boot, pool.ErrBootFailed) {
		t.Errorf("errors.Is(%v, ErrBootFailed) = false", boot)
	}
	_, err := os.ReadFile(filepath.Join(t.TempDir(), "gone.hcl"))
	cfg := errStage("config", err)
	if !errors.Is(cfg, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", cfg)
	}
	var re *ReloadError
	if !errors.As(cfg, &re) || re.Stage != "config" {
		t.Errorf("errors.As: %v", cfg)
	}
	if got := boot.Error(); got != "reload failed (boot): listener web: worker failed to boot: exit status 1" {
		t.Errorf("Error() = %q", got)
	}
}

// TestAnswerNeverBlocks: every asker gets the result once, a watcher
// request's own Reply gets the error, and a full channel does not stall
// the loop.
func TestAnswerNeverBlocks(t *testing.T) {
	a, b := make(chan ReloadResult, 1), make(chan ReloadResult, 1)
	legacy := make(chan error, 1)
	b <- ReloadResult{Plan: "stale"}
	answer([]reloadAsk{{reply: a}, {reply: b}, {legacy: legacy}, {}}, failed(ErrShuttingDown))
	if r := <-a; !errors.Is(r.Err, ErrShuttingDown) {
		t.Errorf("asker got %+v", r)
	}
	if r := <-b; r.Plan != "stale" {
		t.Errorf("a full channel was written: %+v", r)
	}
	if err := <-legacy; !errors.Is(err, ErrShuttingDown) {
		t.Errorf("legacy reply got %v", err)
	}
}
