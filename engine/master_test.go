package engine

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hfork/hfork/pool"
)

const exitStatus1 = syscall.WaitStatus(1 << 8)

// twoListeners: "web" is replaced by the edit (its timeout changes) and
// "api" is scaled (its workers change).
func twoListeners(webTimeout string, apiWorkers int) string {
	return listenerHCL("web", 2, `timeout = "`+webTimeout+`"`) + listenerHCL("api", apiWorkers, "")
}

func startedReady(t *testing.T, config string) *testMaster {
	tm := newTestMaster(t, config)
	tm.ready(tm.pids(0)...)
	if !tm.m.ready {
		t.Fatalf("master not ready with every worker ready:\n%s", tm.logs)
	}
	return tm
}

// A reload whose new workers fail to boot leaves the old generation
// serving, untouched, and says why.
func TestFailedReloadKeepsOldGeneration(t *testing.T) {
	tm := startedReady(t, listenerHCL("web", 2, `timeout = "30s"`))
	old := tm.m.pools["web"]
	tm.write(listenerHCL("web", 2, `timeout = "31s"`))
	reply := tm.reload()
	staged := tm.pids(2)
	if len(staged) != 2 || tm.m.op == nil {
		t.Fatalf("staged workers %v, reload in flight %v", staged, tm.m.op != nil)
	}
	tm.ready(staged[0])
	tm.exit(staged[1], exitStatus1)
	err, ok := tm.answer(reply)
	var re *ReloadError
	if !ok || !errors.As(err, &re) || re.Stage != "boot" || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("reload answered %v (%v), want a boot failure", err, ok)
	}
	if tm.m.pools["web"] != old || tm.m.op != nil || tm.m.cfg.Listeners[0].Timeout.String() != "30s" {
		t.Errorf("the old generation is no longer current")
	}
	for _, pid := range tm.pids(0)[:2] {
		if s := tm.os.sent[pid]; len(s) != 0 {
			t.Errorf("old worker %d was sent %v", pid, s)
		}
	}
	if s := tm.os.sent[staged[0]]; !slices.Equal(s, []syscall.Signal{syscall.SIGTERM}) {
		t.Errorf("the new ready worker got %v, want a drain", s)
	}
	if len(tm.os.starts) != 4 {
		t.Errorf("%d workers started, want 4 (no retry of a staged boot)", len(tm.os.starts))
	}
}

// Reload requests that arrive while one is in flight become one more
// reload once it ends, and every one of them is answered.
func TestReloadCoalescing(t *testing.T) {
	tm := startedReady(t, listenerHCL("web", 2, `timeout = "30s"`))
	tm.write(listenerHCL("web", 2, `timeout = "31s"`))
	first := tm.reload()
	tm.write(listenerHCL("web", 3, `timeout = "31s"`))
	second, third := tm.reload(), tm.reload()
	if len(tm.m.pending) != 2 {
		t.Fatalf("%d reloads pending, want 2", len(tm.m.pending))
	}
	tm.ready(tm.pids(2)...)
	for i, r := range []chan error{first, second, third} {
		if err, ok := tm.answer(r); !ok || err != nil {
			t.Errorf("reload %d answered %v (%v), want success", i+1, err, ok)
		}
	}
	if n := strings.Count(tm.logs.String(), `msg=reloading`); n != 2 {
		t.Errorf("%d reloads ran, want 2 (the second for two requests):\n%s", n, tm.logs)
	}
	if !strings.Contains(tm.logs.String(), "requests=2") {
		t.Error("the coalesced reload does not say it answers two requests")
	}
	if got := tm.m.pools["web"].Target(); got != 3 {
		t.Errorf("target %d after the coalesced reload, want 3", got)
	}
}

// USR2 while a reload is in flight is refused and starts nothing.
func TestUSR2RefusedDuringReload(t *testing.T) {
	tm := startedReady(t, listenerHCL("web", 2, `timeout = "30s"`))
	tm.write(listenerHCL("web", 2, `timeout = "31s"`))
	tm.reload()
	before := len(tm.os.starts)
	tm.m.onSignal(syscall.SIGUSR2)
	if tm.m.upg != nil || len(tm.os.starts) != before || len(tm.os.masters) != 0 {
		t.Fatalf("an upgrade started during a reload")
	}
	if !strings.Contains(tm.logs.String(), "a reload is in flight; USR2 ignored") {
		t.Errorf("no refusal in the log:\n%s", tm.logs)
	}
}

// TTIN while a reload is staged is not lost when it commits: a replaced
// listener's new generation and a scaled listener both keep it.
func TestTTINDuringReload(t *testing.T) {
	tm := startedReady(t, twoListeners("30s", 2))
	tm.write(twoListeners("31s", 4))
	reply := tm.reload()
	tm.m.onSignal(syscall.SIGTTIN)
	tm.ready(tm.pids(4)...)
	if err, ok := tm.answer(reply); !ok || err != nil {
		t.Fatalf("reload answered %v (%v)", err, ok)
	}
	if got := tm.m.pools["web"].Target(); got != 3 {
		t.Errorf("replaced listener: target %d after TTIN during the reload, want 3", got)
	}
	if got := tm.m.pools["api"].Target(); got != 5 {
		t.Errorf("scaled listener: target %d after TTIN during the reload, want 5", got)
	}
	tm.m.onSignal(syscall.SIGTTOU)
	if got := tm.m.pools["web"].Target(); got != 2 {
		t.Errorf("TTOU after the reload: target %d, want 2", got)
	}
}

// The loop takes its signals from Options.Signals: QUIT drains every
// worker, and the master exits once they are reaped.
func TestRunTakesSignalsFromOptions(t *testing.T) {
	tm := startedReady(t, listenerHCL("web", 2, ""))
	done := make(chan int, 1)
	go func() { done <- tm.m.loop() }()
	tm.sigs <- syscall.SIGQUIT
	workers := tm.pids(0)
	for drained := false; !drained; {
		select {
		case code := <-done:
			t.Fatalf("master exited (%d) with workers running", code)
		default:
		}
		tm.os.mu.Lock()
		drained = len(tm.os.sent[workers[0]]) > 0 && len(tm.os.sent[workers[1]]) > 0
		tm.os.mu.Unlock()
		runtime.Gosched()
	}
	tm.os.mu.Lock()
	for _, pid := range workers {
		if s := tm.os.sent[pid]; !slices.Equal(s, []syscall.Signal{syscall.SIGTERM}) {
			t.Errorf("worker %d got %v on QUIT, want SIGTERM", pid, s)
		}
		tm.os.exits = append(tm.os.exits, pool.ExitEvent{Pid: pid})
	}
	tm.os.mu.Unlock()
	tm.sigs <- syscall.SIGCHLD
	if code := <-done; code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// USR2 starts the new master with StartMaster, not as a worker, with the
// sockets and the upgrade pipe in its environment; when it dies before it
// is ready, this master keeps serving.
func TestUpgradeStartsANewMaster(t *testing.T) {
	tm := startedReady(t, listenerHCL("web", 2, ""))
	tm.m.opts.Argv = []string{os.Args[0]} // an absolute path: no PATH lookup
	workers := len(tm.os.starts)
	tm.m.onSignal(syscall.SIGUSR2)
	if len(tm.os.masters) != 1 || len(tm.os.starts) != workers || tm.m.upg == nil {
		t.Fatalf("%d masters and %d workers started, upgrade in flight %v:\n%s", len(tm.os.masters), len(tm.os.starts)-workers, tm.m.upg != nil, tm.logs)
	}
	env := tm.os.masters[0].Env
	for _, want := range []string{"LISTEN_FDS=1", "HFORK_UPGRADE=1", "HFORK_UPGRADE_FD=4"} {
		if !slices.Contains(env, want) {
			t.Errorf("new master's environment lacks %s: %q", want, env)
		}
	}
	tm.os.exits = append(tm.os.exits, pool.ExitEvent{Pid: tm.m.upg.pid, Status: exitStatus1})
	tm.m.onSignal(syscall.SIGCHLD)
	if tm.m.upg != nil || tm.m.stopping != running {
		t.Fatalf("after the new master died: upgrade in flight %v, stopping %v", tm.m.upg != nil, tm.m.stopping)
	}
	if !strings.Contains(tm.logs.String(), "upgrade failed: new master exited; keeping this master") {
		t.Errorf("no failure line:\n%s", tm.logs)
	}
}

// A reload asked while an upgrade is in flight waits for it; when the new
// master takes over, the reload is answered with ErrHandedOver naming the
// new master, not a bare "shutting down".
func TestReloadDuringUpgradeNamesTheNewMaster(t *testing.T) {
	tm := startedReady(t, listenerHCL("web", 2, ""))
	tm.m.opts.Argv = []string{os.Args[0]}
	tm.m.onSignal(syscall.SIGUSR2)
	if tm.m.upg == nil {
		t.Fatalf("no upgrade in flight:\n%s", tm.logs)
	}
	newPid := tm.m.upg.pid
	tm.write(listenerHCL("web", 2, `timeout = "31s"`))
	r := tm.reload()
	if len(tm.m.pending) != 1 {
		t.Fatalf("%d reloads pending during the upgrade, want 1", len(tm.m.pending))
	}
	tm.m.onEvent(upgradeReady{pid: newPid})
	err, ok := tm.answer(r)
	if !ok || !errors.Is(err, ErrHandedOver) || !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("reload answered %v (%v), want ErrHandedOver", err, ok)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", newPid)) {
		t.Errorf("answer %q does not name the new master %d", err, newPid)
	}
}
