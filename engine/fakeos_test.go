package engine

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/internal/syncbuf"
	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/reload"
)

// fakeOS stands in for the operating system under a master: Start hands
// out pids without starting anything, Signal records, Reap returns what
// the test queued, and the clock moves only when the test moves it.
type fakeOS struct {
	mu      sync.Mutex // for tests that run the master's own loop
	now     time.Time
	next    int
	starts  []*exec.Cmd
	masters []*exec.Cmd // upgrades started
	sent    map[int][]syscall.Signal
	exits   []pool.ExitEvent
}

func (f *fakeOS) os() *pool.OS {
	return &pool.OS{
		Start: func(cmd *exec.Cmd) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.starts = append(f.starts, cmd)
			f.next++
			return f.next, nil
		},
		StartMaster: func(cmd *exec.Cmd) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.masters = append(f.masters, cmd)
			f.next++
			return f.next, nil
		},
		Signal: func(pid int, sig syscall.Signal) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.sent[pid] = append(f.sent[pid], sig)
			return nil
		},
		Release: func(int) {},
		Reap: func() []pool.ExitEvent {
			f.mu.Lock()
			defer f.mu.Unlock()
			out := f.exits
			f.exits = nil
			return out
		},
		Now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.now
		},
	}
}

// testMaster is a master on a fake OS, driven one message at a time by
// the test, which plays its loop.
type testMaster struct {
	t    *testing.T
	m    *Master
	os   *fakeOS
	dir  string
	path string
	logs *syncbuf.Buffer
	sigs chan os.Signal
}

// listenerHCL is a listener block bound to a unix socket in the test's
// directory.
func listenerHCL(name string, workers int, body string) string {
	return `listener "` + name + `" {
  bind    = "unix:` + name + `.sock"
  workers = ` + strconv.Itoa(workers) + `
  ` + body + `
  route "/" {
    respond { body = "` + name + `" }
  }
}
`
}

func newTestMaster(t *testing.T, config string) *testMaster {
	t.Helper()
	dir, err := os.MkdirTemp("", "hfe") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tm := &testMaster{t: t, dir: dir, path: filepath.Join(dir, "server.hcl"), logs: &syncbuf.Buffer{},
		os: &fakeOS{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), next: 1000, sent: map[int][]syscall.Signal{}}}
	tm.write(config)
	cfg := tm.parse()
	log := slog.New(slog.NewTextHandler(tm.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	logging := &Logging{Out: &LogOutput{}, Log: log, Format: "json"}
	tm.sigs = make(chan os.Signal, 8)
	m, err := New(Options{ConfigPath: tm.path, Config: cfg, Argv: []string{"hfork"}, Dir: dir, Logging: logging,
		OS: tm.os.os(), Signals: tm.sigs})
	if err != nil {
		t.Fatal(err)
	}
	tm.m = m
	stop, err := m.start()
	t.Cleanup(func() {
		stop()
		m.sockets.CloseAll(false)
	})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func (tm *testMaster) write(config string) {
	tm.t.Helper()
	if err := os.WriteFile(tm.path, []byte("reload { watch = false }\n"+config), 0o644); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *testMaster) parse() hclconfig.Config {
	tm.t.Helper()
	src, err := os.ReadFile(tm.path)
	if err != nil {
		tm.t.Fatal(err)
	}
	cfg, _, diags := hclconfig.Parse(tm.path, src)
	if diags.HasErrors() {
		tm.t.Fatal(diags.Error())
	}
	return cfg
}

// pids are the workers started so far, in order, from start.
func (tm *testMaster) pids(from int) []int {
	var out []int
	for i := from; i < len(tm.os.starts); i++ {
		out = append(out, 1001+i)
	}
	return out
}

// ready makes each pid say READY=1.
func (tm *testMaster) ready(pids ...int) {
	for _, pid := range pids {
		tm.m.onEvent(pool.NotifyEvent{Pid: pid, Notice: wire.Notice{wire.KeyReady: "1"}})
	}
}

// exit reaps pid with status, then ticks past the wait for its last words.
func (tm *testMaster) exit(pid int, status syscall.WaitStatus) {
	tm.os.exits = append(tm.os.exits, pool.ExitEvent{Pid: pid, Status: status})
	tm.m.onSignal(syscall.SIGCHLD)
	tm.os.now = tm.os.now.Add(tickEvery)
	tm.m.tick()
}

// reload asks for a reload and returns where its answer arrives.
func (tm *testMaster) reload() chan error {
	reply := make(chan error, 1)
	tm.m.onReload(askFromWatcher(reload.Request{Reason: "test", Reply: reply}))
	return reply
}

func (tm *testMaster) answer(reply chan error) (error, bool) {
	select {
	case err := <-reply:
		return err, true
	default:
		return nil, false
	}
}
