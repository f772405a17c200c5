package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/engine"
)

// The zero-downtime tests run bounded keep-alive load (a fixed number of
// clients, a few seconds, loopback only) through reloads, upgrades, scaling
// and recycling, and assert that no request failed.

const clients = 50

// webConfig is listener "web" answering body. The body also sets a field
// a swap cannot apply (replaceLine), so that a reload from one body to
// another replaces the workers, which is what the tests using it drive;
// swap_test.go drives swaps.
func webConfig(port int, body string, extra string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }
listener "web" {
  bind    = "127.0.0.1:%d"
  class   = "async"
  workers = 2
  graceful_timeout = "10s"
  %s
  %s
  route "/" {
    respond { body = %q }
  }
}
`, port, replaceLine(body), extra, body)
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; skipped with -short")
	}
}

func TestReloadUnderLoad(t *testing.T) {
	skipShort(t)
	port := mustFreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	m := startMaster(t, "", webConfig(port, "v0", ""))
	waitBody(t, url, "v0")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", clients)
	const reloads = 20
	var took []time.Duration
	for i := 1; i <= reloads; i++ {
		m.writeConfig(webConfig(port, fmt.Sprintf("v%d", i), ""))
		start := time.Now()
		out, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid")))
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		took = append(took, time.Since(start))
		if !strings.Contains(out, `replace  listener "web"`) {
			t.Fatalf("reload %d: plan %q", i, out)
		}
		l.waitServed(t, 50)
	}
	l.waitServed(t, 200)
	l.requireNoFailures(t, fmt.Sprintf("across %d reloads", reloads))
	t.Logf("reload latencies (control request to every new worker ready): %v", took)
	if l.bodies[fmt.Sprintf("v%d", reloads)] == 0 {
		t.Errorf("the last config was never served: %v", l.bodies)
	}
	// Old generations are gone: two workers remain.
	m.waitWorkers("web", 2)
}

func TestReloadKeepsUntouchedListener(t *testing.T) {
	pa, pb := mustFreePort(t), mustFreePort(t)
	two := func(bodyB string, workersA int) string {
		return fmt.Sprintf(`
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "a" {
  bind    = "127.0.0.1:%d"
  workers = %d
  route "/" {
    respond { body = "a" }
  }
}
listener "b" {
  bind    = "127.0.0.1:%d"
  class   = "thread"
  workers = 1
  route "/" {
    respond { body = %q }
  }
}
`, pa, workersA, pb, bodyB)
	}
	m := startMaster(t, "", two("b1", 2))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", pb), "b1")
	aPids := sorted(m.waitWorkers("a", 2))

	// Only B changes: A's workers are untouched.
	m.writeConfig(two("b2", 2))
	m.signal(syscall.SIGHUP)
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", pb), "b2")
	if got := sorted(m.waitWorkers("a", 2)); fmt.Sprint(got) != fmt.Sprint(aPids) {
		t.Errorf("listener a's workers changed on a reload of b: %v -> %v", aPids, got)
	}

	// Scale only: the surviving pids stay.
	m.writeConfig(two("b2", 3))
	m.signal(syscall.SIGHUP)
	got := m.waitWorkers("a", 3)
	for _, p := range aPids {
		if !contains(got, p) {
			t.Errorf("scale 2->3 replaced worker %d: %v -> %v", p, aPids, got)
		}
	}
	m.writeConfig(two("b2", 1))
	m.signal(syscall.SIGHUP)
	got = m.waitWorkers("a", 1)
	if !contains(append(aPids, got...), got[0]) {
		t.Errorf("scale down started a new worker: %v", got)
	}
}

func TestReloadBadConfigAndBootFailureKeepOld(t *testing.T) {
	skipShort(t)
	port := mustFreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	m := startMaster(t, "", webConfig(port, "good", ""))
	waitBody(t, url, "good")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", clients)
	pidfile := filepath.Join(m.dir, "hfork.pid")

	// A config that does not parse.
	m.writeConfig(webConfig(port, "bad", "") + "\nlistener {\n")
	if _, err := engine.ControlReload(engine.ControlPath(pidfile)); err == nil || !strings.Contains(err.Error(), "server.hcl:") {
		t.Errorf("bad config: err = %v, want diagnostics with file:line", err)
	}
	// New workers that cannot boot: a static root is fine at parse time but
	// the worker's access log cannot be opened.
	m.writeConfig(webConfig(port, "bad", `access_log { file = "missing-dir/access.log" }`))
	// (A replace: webConfig's body is in a field a swap cannot apply.)
	if _, err := engine.ControlReload(engine.ControlPath(pidfile)); err == nil || !strings.Contains(err.Error(), "boot") {
		t.Errorf("boot failure: err = %v, want a boot failure", err)
	}
	l.waitServed(t, 200)
	l.requireNoFailures(t, "across a bad config and a failed boot")
	if l.bodies["bad"] != 0 {
		t.Errorf("the failed config served %d requests", l.bodies["bad"])
	}
	m.waitWorkers("web", 2)
}

func TestScaleAndWinchUnderLoad(t *testing.T) {
	skipShort(t)
	m, port := serveWeb(t, "")
	l := loadOn(t, port)
	m.waitWorkers("web", 2)
	for i, step := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGTTIN, 3}, {syscall.SIGTTIN, 4}, {syscall.SIGTTOU, 3}, {syscall.SIGTTOU, 2}, {syscall.SIGTTOU, 1}, {syscall.SIGTTOU, 1}} {
		m.signal(step.sig)
		// One "scaling" line per signal: the master took this one before
		// the next is sent (the kernel merges identical pending signals).
		m.waitLog(`"msg":"scaling"`, i+1, 10*time.Second)
		m.waitWorkers("web", step.want)
	}
	// WINCH: every worker drains, the socket stays; HUP brings them back
	// and the connections that waited in the backlog are served.
	m.signal(syscall.SIGWINCH)
	m.waitWorkers("web", 0)
	time.Sleep(300 * time.Millisecond)
	m.signal(syscall.SIGHUP)
	m.waitWorkers("web", 2)
	l.waitServed(t, 200)
	l.requireNoFailures(t, "across TTIN, TTOU, WINCH and HUP")
}

func TestRecycleUnderLoad(t *testing.T) {
	skipShort(t)
	m, port := serveWeb(t, "max_requests = 2000\n  max_requests_jitter = 500")
	l := loadOn(t, port)
	m.waitLog("max_requests reached; replacement ready", 4, 30*time.Second)
	l.requireNoFailures(t, "across recycles")
}

func TestKillWorkerFailsOnlyItsConnections(t *testing.T) {
	skipShort(t)
	m, port := serveWeb(t, "")
	l := loadOn(t, port)
	l.waitWarm(t) // every connection is open before the victim's are counted
	victim := m.waitWorkers("web", 2)[0]
	conns := tcpConns(t, victim)
	syscall.Kill(victim, syscall.SIGKILL)
	m.waitLog("worker exited unexpectedly", 1, 10*time.Second)
	l.waitServed(t, 200)
	after := m.waitWorkers("web", 2)
	if contains(after, victim) {
		t.Fatalf("killed worker %d still listed", victim)
	}
	l.finish()
	l.report(t)
	// A killed worker can fail only the requests on its own connections:
	// at most one per connection it held.
	if n := l.fail.Load(); n > int64(conns) {
		t.Errorf("%d requests failed, but the killed worker held only %d connections", n, conns)
	}
	t.Logf("killed worker held %d connections; %d requests failed", conns, l.fail.Load())
}

// tcpConns counts the established TCP sockets a process holds (its
// listening socket excluded). A worker is not dumpable, so only root may
// list its fds.
func tcpConns(t *testing.T, pid int) int {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if errors.Is(err, os.ErrPermission) {
		t.Skip("needs root to count a worker's connections (workers are not dumpable)")
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "01" && inodes[fs[9]] { // 01: ESTABLISHED
				n++
			}
		}
	}
	return n
}

func TestUpgradeUnderLoad(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "hfork")
	build := func(version string) { buildHfork(t, bin, version) }
	build("v1")
	port := mustFreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	m := startMaster(t, bin, webConfig(port, "ok", ""))
	waitBody(t, url, "ok")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", clients)
	first := m.pid()
	var took []time.Duration
	for i, v := range []string{"v2", "v3", "v4"} {
		build(v)
		old := m.pid()
		start := time.Now()
		m.signal(syscall.SIGUSR2)
		if !waitGone(old, 20*time.Second) {
			t.Fatalf("upgrade %d: old master %d still running", i+1, old)
		}
		took = append(took, time.Since(start))
		m.waitLog(`"version":"`+v+`"`, 1, 5*time.Second)
		if m.pid() == old {
			t.Fatalf("upgrade %d: pidfile still names the old master", i+1)
		}
		if _, err := os.Stat(filepath.Join(m.dir, "hfork.pid.oldbin")); err == nil {
			t.Errorf("upgrade %d: hfork.pid.oldbin left behind", i+1)
		}
		l.waitServed(t, 100)
	}
	l.requireNoFailures(t, "across 3 upgrades")
	t.Logf("handover times (USR2 to old master gone): %v", took)
	if m.pid() == first {
		t.Fatal("no upgrade happened")
	}
	// The new master serves and has its workers; a QUIT stops it cleanly.
	newest := m.pid()
	pids := m.waitWorkers("web", 2)
	syscall.Kill(newest, syscall.SIGQUIT)
	if !waitGone(newest, 15*time.Second) {
		t.Fatal("upgraded master did not exit on QUIT")
	}
	for _, p := range pids {
		if !waitGone(p, 5*time.Second) {
			t.Errorf("worker %d outlived its master", p)
		}
	}
}

func TestUpgradeFailureKeepsOldMaster(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "hfork")
	buildHfork(t, bin, "")
	port := mustFreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	m := startMaster(t, bin, webConfig(port, "ok", ""))
	waitBody(t, url, "ok")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", clients)
	pid := m.pid()
	cases := []struct {
		name  string
		setup func()
		log   string
	}{
		{"binary exits at once", func() {
			// Replace by rename: the running binary's file cannot be written.
			os.WriteFile(bin+".new", []byte("#!/bin/sh\nexit 3\n"), 0o755)
			os.Rename(bin+".new", bin)
		}, "upgrade failed: new master exited"},
		{"binary missing", func() { os.Remove(bin) }, "upgrade failed; keeping this master"},
		{"config invalid", func() {
			buildHfork(t, bin, "")
			m.writeConfig(webConfig(port, "ok", "") + "\nbogus = 1\n")
		}, "upgrade failed: new master exited"},
		{"workers fail to boot", func() {
			m.writeConfig(webConfig(port, "ok", `access_log { file = "missing-dir/a.log" }`))
		}, "upgrade failed: new master exited"},
		{"workers not ready within boot_timeout", func() {
			slow := mustFreePort(t)
			m.writeConfig(webConfig(port, "ok", "") + fmt.Sprintf(`
listener "slow" {
  bind         = "127.0.0.1:%d"
  class        = "exec"
  workers      = 1
  boot_timeout = "1s"
  command      = ["sleep", "60"]
}
`, slow))
		}, "upgrade failed: new master exited"},
	}
	for i, c := range cases {
		c.setup()
		m.signal(syscall.SIGUSR2)
		want := 1
		for _, earlier := range cases[:i] {
			if earlier.log == c.log {
				want++
			}
		}
		m.waitLog(c.log, want, 30*time.Second)
		if c.name == "workers not ready within boot_timeout" {
			m.waitLog("not ready within boot_timeout 1s", 1, 5*time.Second)
		}
		if m.pid() != pid {
			t.Fatalf("%s: pidfile names %d, want the old master %d", c.name, m.pid(), pid)
		}
		if !alive(pid) {
			t.Fatalf("%s: old master died", c.name)
		}
	}
	l.waitServed(t, 100)
	l.requireNoFailures(t, "across failed upgrades")
	for p := range children(pid) {
		if !contains(m.workerPids("web"), p) {
			t.Errorf("child %d of the old master is not a worker (a leftover new master?)", p)
		}
	}
}

func sorted(p []int) []int {
	out := append([]int(nil), p...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestReloadLogSettingsKeepsWorkers: a reload that changes only the log
// block restarts nothing; the master and its workers switch level at once.
func TestReloadLogSettingsKeepsWorkers(t *testing.T) {
	port := mustFreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	m := startMaster(t, "", webConfig(port, "ok", ""))
	waitBody(t, url, "ok")
	// Both workers ready: the one TTOU drains below must have its signal
	// handling in place (one still starting would just die of the TERM).
	m.waitLog(`"msg":"hfork ready"`, 1, 15*time.Second)
	before := sorted(m.waitWorkers("web", 2))
	m.writeConfig(strings.Replace(webConfig(port, "ok", ""), `level  = "info"`, `level  = "debug"`, 1))
	out, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid")))
	if err != nil || !strings.Contains(out, "apply    log settings") {
		t.Fatalf("reload: %q %v", out, err)
	}
	if after := sorted(m.waitWorkers("web", 2)); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a log-only reload replaced workers: %v -> %v", before, after)
	}
	// Workers log at debug now: a worker's own state changes are debug
	// lines, which only a worker writes.
	m.signal(syscall.SIGTTOU)
	m.waitLog(`"level":"DEBUG","msg":"worker state"`, 1, 5*time.Second)
}

// TestProxyReloadUnderLoad runs the load through a proxy route, served by
// the workers' event loop with its pool of keep-alive connections to the
// upstream listener, while reloads replace the upstream's workers (and
// once the proxy's): a pooled connection closed by a draining upstream is
// retried, an answer with "Connection: close" retires its connection, and
// no request fails.
func TestProxyReloadUnderLoad(t *testing.T) {
	skipShort(t)
	pw, pa := mustFreePort(t), mustFreePort(t)
	conf := func(body string, webWorkers int) string {
		return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }
listener "web" {
  bind    = "127.0.0.1:%d"
  class   = "async"
  workers = %d
  graceful_timeout = "10s"
  route "/" {
    proxy { upstream = "http://127.0.0.1:%d" }
  }
}
listener "api" {
  bind      = "127.0.0.1:%d"
  class     = "async"
  workers   = 2
  keepalive = "1s"
  graceful_timeout = "10s"
  route "/" {
    respond { body = %q }
  }
}
`, pw, webWorkers, pa, pa, body)
	}
	m := startMaster(t, "", conf("v0", 2))
	url := fmt.Sprintf("http://127.0.0.1:%d/", pw)
	waitBody(t, url, "v0")
	l := loadOn(t, pw)
	const reloads = 8
	for i := 1; i <= reloads; i++ {
		workers := 2
		if i == reloads/2 {
			workers = 3 // the proxy's own workers change once too
		}
		m.writeConfig(conf(fmt.Sprintf("v%d", i), workers))
		if _, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid"))); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		l.waitServed(t, 100)
	}
	l.waitServed(t, 200)
	l.requireNoFailures(t, fmt.Sprintf("through the proxy across %d reloads of its upstream", reloads))
	if l.bodies[fmt.Sprintf("v%d", reloads)] == 0 {
		t.Errorf("the last config was never served: %v", l.bodies)
	}
}
