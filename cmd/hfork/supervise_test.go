package main

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowUpstream answers after d. Each request that reaches it is announced
// on arrived, when there is room: the request is then in flight through
// hfork.
func slowUpstream(t *testing.T, d time.Duration) (url string, arrived <-chan struct{}) {
	ch := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ch <- struct{}{}:
		default:
		}
		time.Sleep(d)
		io.WriteString(w, "slow done")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

func proxyConfig(port int, class, upstream, extra string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "web" {
  bind    = "127.0.0.1:%d"
  class   = %q
  workers = 1
  %s
  route "/slow/" {
    proxy { upstream = %q }
  }
  route "/" {
    respond { body = "fast" }
  }
}
`, port, class, extra, upstream)
}

func TestQuitFinishesInFlightRequest(t *testing.T) {
	port := mustFreePort(t)
	upstream, arrived := slowUpstream(t, 1500*time.Millisecond)
	m := startMaster(t, "", proxyConfig(port, "async", upstream, `graceful_timeout = "10s"`))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "fast")
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/slow/x", port))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
	m.signal(syscall.SIGQUIT)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "slow done" {
		t.Fatalf("in-flight request during QUIT: status %d body %q err %v", r.status, r.body, r.err)
	}
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		t.Fatal("master did not exit after QUIT")
	}
	if m.exit != nil {
		t.Fatalf("master exit: %v", m.exit)
	}
}

func TestSyncWorkerTimeout(t *testing.T) {
	port := mustFreePort(t)
	upstream, _ := slowUpstream(t, 4*time.Second)
	m := startMaster(t, "", proxyConfig(port, "sync", upstream, `timeout = "1s"`))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "fast")
	before := m.waitWorkers("web", 1)[0]
	client := &http.Client{Timeout: 3500 * time.Millisecond}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/slow/stuck", port))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a request stuck past timeout was answered: %d", resp.StatusCode)
	}
	m.waitLog(`"msg":"worker timeout"`, 1, 10*time.Second)
	m.waitLog(`"request":"GET /slow/stuck"`, 1, time.Second)
	// A replacement serves.
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "fast")
	if after := m.waitWorkers("web", 1)[0]; after == before {
		t.Fatalf("the timed-out worker %d was not replaced", before)
	}
}

func TestKillMasterLeavesNoWorker(t *testing.T) {
	port := mustFreePort(t)
	m := startMaster(t, "", webConfig(port, "ok", ""))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	pids := m.waitWorkers("web", 2)
	m.cmd.Process.Kill()
	<-m.done
	for _, p := range pids {
		if !waitGone(p, 3*time.Second) {
			t.Errorf("worker %d outlived its master's SIGKILL", p)
		}
	}
}

// TestWorkerReplacedAfterCrash kills a worker 20 times and checks a ready
// replacement each time, logging how long each took. It kills the oldest
// of four workers, a quarter second apart, so every victim has served for
// over a second: one that dies sooner counts as a crash loop and is
// restarted with backoff (TestScripts/crashloop).
func TestWorkerReplacedAfterCrash(t *testing.T) {
	skipShort(t)
	port := mustFreePort(t)
	m := startMaster(t, "", strings.Replace(webConfig(port, "ok", ""), "workers = 2", "workers = 4", 1))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	m.waitLog(`"msg":"hfork ready"`, 1, 10*time.Second)
	time.Sleep(time.Second)
	var took []time.Duration
	for i := 1; i <= 20; i++ {
		// The oldest by start time: pids wrap (pid_max may be 32768).
		victim := slices.MinFunc(m.waitWorkers("web", 4), func(a, b int) int { return cmp.Compare(startTime(a), startTime(b)) })
		start := time.Now()
		syscall.Kill(victim, syscall.SIGKILL)
		m.waitLog(`"msg":"worker ready"`, 4+i, 10*time.Second)
		took = append(took, time.Since(start))
		time.Sleep(250 * time.Millisecond)
	}
	if strings.Contains(m.log.String(), "retrying") {
		t.Errorf("a worker that served for over a second was backed off as a crash loop")
	}
	slices.Sort(took)
	t.Logf("death to replacement ready, sorted: %v; median %v", took, (took[9]+took[10])/2)
}

// TestSignalSequence sends TTIN, TTOU and USR1 one after another: each
// one counts. The kernel keeps one pending instance per signal number, so
// identical signals sent faster than the master runs merge; the test waits
// for each to be taken before sending the next of the same kind, and sends
// different signals back to back.
func TestSignalSequence(t *testing.T) {
	port := mustFreePort(t)
	m := startMaster(t, "", webConfig(port, "ok", ""))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	m.waitWorkers("web", 2)
	for i := 1; i <= 3; i++ {
		m.signal(syscall.SIGTTIN)
		m.waitLog(`"signal":"TTIN"`, i, 5*time.Second)
	}
	m.waitWorkers("web", 5)
	for i := 1; i <= 3; i++ {
		m.signal(syscall.SIGTTOU)
		m.waitLog(`"signal":"TTOU"`, i, 5*time.Second)
	}
	// Two different signals back to back: both are handled.
	m.signal(syscall.SIGUSR1)
	m.signal(syscall.SIGTTOU)
	m.waitWorkers("web", 1)
	m.waitLog(`"msg":"log files reopened"`, 1, 5*time.Second)
}

// startTime is when pid started, in clock ticks since boot (field 22 of
// /proc/PID/stat).
func startTime(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
