package pool

import (
	"bufio"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

func notify(p *Pool, f *fakeOS, pid int, datagram string) {
	p.HandleNotify(NotifyEvent{Pid: pid, Notice: wire.ParseNotice([]byte(datagram))}, f.now)
}

// exit reaps pid with status and waits for its report: the fake child's
// stderr pipe reaches EOF at once, unless the test keeps it open.
func exit(t *testing.T, p *Pool, f *fakeOS, pid int, status syscall.WaitStatus) {
	t.Helper()
	w := p.find(pid)
	if w == nil {
		t.Fatalf("pid %d is not a live worker of the pool", pid)
	}
	if !p.HandleExit(ExitEvent{Pid: pid, Status: status}, f.now) {
		t.Fatalf("HandleExit(%d) = false", pid)
	}
	<-w.err.done
	p.Tick(f.now)
	if inPool(p, pid) {
		t.Fatalf("pid %d still in the pool after its exit was reported", pid)
	}
}

// inPool reports whether pid is among the pool's workers, live or waiting
// for its exit report.
func inPool(p *Pool, pid int) bool {
	return slices.ContainsFunc(p.workers, func(w *Worker) bool { return w.Pid == pid })
}

const (
	exitStatus1 = syscall.WaitStatus(1 << 8)
	killedBy9   = syscall.WaitStatus(syscall.SIGKILL)
)

// A live pool whose workers cannot start retries after 100ms, then 200ms,
// 400ms, ..., never more than 10s apart.
func TestBackoffDoubles(t *testing.T) {
	f := newFakeOS(t)
	f.startErr = errNoFork
	p, logs := newTestPool(t, f, testListener(hclconfig.ClassAsync, 1), false)
	t0 := f.now
	p.Start()
	for range 4500 { // 45s in 10ms steps
		f.now = f.now.Add(10 * time.Millisecond)
		p.Tick(f.now)
	}
	var gaps []time.Duration
	for i := 1; i < len(f.starts); i++ {
		gaps = append(gaps, f.starts[i].Sub(f.starts[i-1]))
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if f.starts[0] != t0 || !slices.Equal(gaps, want) {
		t.Errorf("start attempts %v apart (first at +%v), want %v", gaps, f.starts[0].Sub(t0), want)
	}
	if !strings.Contains(logs.String(), "retry_in=200ms") {
		t.Errorf("no retry_in in the log:\n%s", logs)
	}
	if p.Err() != nil {
		t.Errorf("a live pool failed: %v", p.Err())
	}
}

// A staged pool (a reload's new generation) whose worker fails to boot
// fails as a whole and starts nothing more.
func TestStagedPoolFailure(t *testing.T) {
	f := newFakeOS(t)
	f.say = "ImportError: no module named shop"
	l := testListener(hclconfig.ClassAsync, 2)
	l.Timeout = 0 // no heartbeats here
	p, _ := newTestPool(t, f, l, true)
	p.Start()
	if len(f.starts) != 2 {
		t.Fatalf("%d starts, want 2", len(f.starts))
	}
	notify(p, f, 1001, "READY=1")
	exit(t, p, f, 1002, exitStatus1)
	err := p.Err()
	if !errors.Is(err, ErrBootFailed) || !strings.Contains(err.Error(), "exit status 1: ImportError") {
		t.Fatalf("Err() = %v, want ErrBootFailed with the status and the last line", err)
	}
	for range 100 {
		f.now = f.now.Add(100 * time.Millisecond)
		p.Tick(f.now)
	}
	if len(f.starts) != 2 || p.Ready() {
		t.Errorf("after the failure: %d starts, ready %v; want 2, false", len(f.starts), p.Ready())
	}
	p.Drain("reload failed")
	if got := f.signals(1001); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
		t.Errorf("the ready worker of the failed pool got %v, want a drain", got)
	}
}

// A worker that reached max_requests keeps serving until its replacement
// is ready; only then is it drained.
func TestRecycledWorkerDrainsAfterReplacementReady(t *testing.T) {
	f := newFakeOS(t)
	p, _ := newTestPool(t, f, testListener(hclconfig.ClassAsync, 1), false)
	p.Start()
	notify(p, f, 1001, "READY=1")
	notify(p, f, 1001, wire.Heartbeat(wire.Load{Requests: 100})+"\n"+wire.KeyRecycle+"=1")
	if len(f.starts) != 2 {
		t.Fatalf("%d starts after X_HFORK_RECYCLE=1, want a replacement", len(f.starts))
	}
	f.now = f.now.Add(time.Second)
	p.Tick(f.now)
	if got := f.signals(1001); len(got) != 0 {
		t.Fatalf("recycled worker signalled %v before its replacement was ready", got)
	}
	if p.Ready() {
		t.Error("pool ready while the replacement starts")
	}
	notify(p, f, 1002, "READY=1")
	if got := f.signals(1001); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
		t.Errorf("recycled worker got %v once its replacement was ready, want SIGTERM", got)
	}
	if !p.Ready() || p.serving() != 1 {
		t.Errorf("ready %v, serving %d; want true, 1", p.Ready(), p.serving())
	}
}

// A sync worker whose oldest request is older than timeout is killed; an
// async worker with the same request is not (its timeout is liveness).
func TestSyncTimeoutKills(t *testing.T) {
	for _, tc := range []struct {
		class string
		kill  bool
	}{{hclconfig.ClassSync, true}, {hclconfig.ClassThread, true}, {hclconfig.ClassAsync, false}} {
		t.Run(tc.class, func(t *testing.T) {
			f := newFakeOS(t)
			p, logs := newTestPool(t, f, testListener(tc.class, 1), false) // timeout 2s
			p.Start()
			notify(p, f, 1001, "READY=1")
			f.now = f.now.Add(5 * time.Second) // long enough to count as stable
			notify(p, f, 1001, wire.Heartbeat(wire.Load{Requests: 3, Inflight: 1, Oldest: 1500 * time.Millisecond, OldestReq: "GET /slow"}))
			f.now = f.now.Add(400 * time.Millisecond) // the request is 1.9s old
			p.Tick(f.now)
			if got := f.signals(1001); len(got) != 0 {
				t.Fatalf("signalled %v before the timeout", got)
			}
			f.now = f.now.Add(200 * time.Millisecond) // 2.1s
			p.Tick(f.now)
			killed := slices.Equal(f.signals(1001), []syscall.Signal{syscall.SIGKILL})
			if killed != tc.kill {
				t.Fatalf("signals %v; want a kill: %v", f.signals(1001), tc.kill)
			}
			if !tc.kill {
				return
			}
			if !strings.Contains(logs.String(), `msg="worker timeout"`) || !strings.Contains(logs.String(), "GET /slow") {
				t.Errorf("no timeout line naming the request:\n%s", logs)
			}
			exit(t, p, f, 1001, killedBy9)
			if len(f.starts) != 2 {
				t.Errorf("%d starts, want a replacement", len(f.starts))
			}
		})
	}
}

// A worker that says STOPPING=1 on its own is replaced at once and not
// signalled.
func TestStoppingRefills(t *testing.T) {
	f := newFakeOS(t)
	p, _ := newTestPool(t, f, testListener(hclconfig.ClassAsync, 2), false)
	p.Start()
	notify(p, f, 1001, "READY=1")
	notify(p, f, 1002, "READY=1")
	notify(p, f, 1001, "STOPPING=1")
	if len(f.starts) != 3 {
		t.Fatalf("%d starts after STOPPING=1, want 3", len(f.starts))
	}
	if w := p.find(1001); w.State != Draining {
		t.Errorf("the stopping worker is %v, want draining", w.State)
	}
	if p.Target() != 2 || len(f.sent) != 0 {
		t.Errorf("target %d, signals %v; want 2, none", p.Target(), f.sent)
	}
	exit(t, p, f, 1001, 0)
	if len(f.starts) != 3 {
		t.Errorf("%d starts after the stopping worker left, want 3", len(f.starts))
	}
}

// The Spec is the first line a worker reads, and Commands follow in the
// order they were sent, however soon after the spawn they are.
func TestControlPipeSpecFirst(t *testing.T) {
	f := newFakeOS(t)
	p, _ := newTestPool(t, f, testListener(hclconfig.ClassAsync, 1), false)
	p.Start()
	const n = 200
	for i := range n {
		p.SetLog(strconv.Itoa(i), "json")
	}
	br := bufio.NewReader(f.controls[1001])
	spec, err := wire.ReadSpec(br)
	if err != nil || spec.Gen != 1 || spec.Listener.Name != "web" || spec.LogLevel != "info" {
		t.Fatalf("first line: %+v, %v; want the Spec", spec, err)
	}
	for i := range n {
		line, err := br.ReadBytes('\n')
		var c wire.Command
		if err != nil || json.Unmarshal(line, &c) != nil || c.LogLevel != strconv.Itoa(i) {
			t.Fatalf("line %d after the Spec is %q (%v)", i, line, err)
		}
	}
}

// An exit is reported with the worker's last line, and the report never
// makes the state owner wait: while a grandchild holds the pipe open, the
// report waits for a later Tick.
func TestExitReportWaitsWithoutBlocking(t *testing.T) {
	f := newFakeOS(t)
	f.say, f.linger = "panic: listener gone", true
	p, logs := newTestPool(t, f, testListener(hclconfig.ClassAsync, 1), false)
	p.Start()
	notify(p, f, 1001, "READY=1")
	for p.find(1001).err.lastLine() == "" { // the reader has the line
		runtime.Gosched()
	}
	f.now = f.now.Add(5 * time.Second)
	p.HandleExit(ExitEvent{Pid: 1001, Status: exitStatus1}, f.now)
	if !inPool(p, 1001) || len(f.starts) != 1 {
		t.Fatal("the exit was accounted before its output drained")
	}
	// Meanwhile the pid is not this pool's any more: the kernel may give it
	// to a worker of another pool, whose datagrams must reach that pool.
	if p.HandleNotify(NotifyEvent{Pid: 1001, Notice: wire.Notice{wire.KeyReady: "1"}}, f.now) {
		t.Error("a reaped worker's pid still claims notify datagrams")
	}
	p.Tick(f.now.Add(lastWordsWait - time.Millisecond))
	if len(f.starts) != 1 {
		t.Fatal("replaced before the exit was reported")
	}
	f.now = f.now.Add(lastWordsWait)
	p.Tick(f.now)
	if inPool(p, 1001) || len(f.starts) != 2 {
		t.Fatalf("after lastWordsWait: in pool %v, %d starts", inPool(p, 1001), len(f.starts))
	}
	if !strings.Contains(logs.String(), `last_output="panic: listener gone"`) {
		t.Errorf("exit line without the last output:\n%s", logs)
	}
}

// A change in a worker's in-flight count is one debug line; a heartbeat
// that changes nothing is none.
func TestInflightDebugLine(t *testing.T) {
	f := newFakeOS(t)
	p, logs := newTestPool(t, f, testListener(hclconfig.ClassAsync, 1), false)
	p.Start()
	notify(p, f, 1001, "READY=1")
	for _, n := range []int{0, 1, 1, 2, 0} {
		notify(p, f, 1001, wire.Heartbeat(wire.Load{Requests: 5, Inflight: n}))
	}
	if got := strings.Count(logs.String(), `msg="worker requests in flight"`); got != 3 {
		t.Errorf("%d in-flight lines, want 3 (0→1, 1→2, 2→0):\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "pid=1001 inflight=1 requests=5") {
		t.Errorf("no line with the count:\n%s", logs)
	}
}
