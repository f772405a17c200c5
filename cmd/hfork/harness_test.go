package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/internal/syncbuf"
)

const envTestMaster = "HFORK_TEST_MASTER"

// master is an hfork master started by a test, with its log captured.
type master struct {
	t       *testing.T
	dir     string
	cfgPath string
	cmd     *exec.Cmd
	log     *syncbuf.Buffer
	done    chan struct{}
	exit    error
}

// startMaster writes cfg to a temp dir and starts the test binary as an
// hfork master on it (binary: "" for the test binary itself). The master
// is killed, with all its workers, when the test ends.
func startMaster(t *testing.T, binary, cfg string) *master {
	t.Helper()
	return startMasterIn(t, t.TempDir(), binary, cfg)
}

// startMasterIn is startMaster in dir, which may hold files cfg names.
func startMasterIn(t *testing.T, dir, binary, cfg string) *master {
	t.Helper()
	m := &master{t: t, dir: dir, cfgPath: filepath.Join(dir, "server.hcl"), log: &syncbuf.Buffer{}, done: make(chan struct{})}
	m.writeConfig(cfg)
	env := os.Environ()
	if binary == "" {
		binary = os.Args[0]
		env = append(env, envTestMaster+"=1")
	}
	m.cmd = exec.Command(binary, "-f", m.cfgPath)
	m.cmd.Dir = dir
	m.cmd.Env = env
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.exit = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		m.stop(syscall.SIGINT)
		if t.Failed() {
			t.Logf("master log:\n%s", m.log.String())
		}
	})
	return m
}

// writeConfig replaces the config atomically (write, then rename).
func (m *master) writeConfig(cfg string) {
	tmp := m.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, m.cfgPath); err != nil {
		m.t.Fatal(err)
	}
}

// pid is the current master's pid, from the pidfile (it moves on upgrade).
func (m *master) pid() int {
	b, err := os.ReadFile(filepath.Join(m.dir, "hfork.pid"))
	if err != nil {
		return m.cmd.Process.Pid
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (m *master) signal(sig syscall.Signal) {
	m.t.Helper()
	if err := syscall.Kill(m.pid(), sig); err != nil {
		m.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop ends the master (and whatever master replaced it) and waits.
func (m *master) stop(sig syscall.Signal) {
	if pid := m.pid(); pid != m.cmd.Process.Pid && alive(pid) {
		syscall.Kill(pid, sig)
		waitGone(pid, 10*time.Second)
	}
	select {
	case <-m.done:
	default:
		m.cmd.Process.Signal(sig)
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			m.cmd.Process.Kill()
			<-m.done
		}
	}
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitLog waits until the master's log contains text n times in all.
func (m *master) waitLog(text string, n int, d time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(d)
	for strings.Count(m.log.String(), text) < n {
		if time.Now().After(deadline) {
			m.t.Fatalf("log has %d × %q, want %d", strings.Count(m.log.String(), text), text, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// workerPids lists the master's live workers of a listener.
func (m *master) workerPids(listener string) []int {
	var out []int
	for pid, cmd := range children(m.pid()) {
		if isWorker(pid, cmd, listener) {
			out = append(out, pid)
		}
	}
	return out
}

// waitWorkers waits until the listener has n live workers.
func (m *master) waitWorkers(listener string, n int) []int {
	m.t.Helper()
	return m.waitWorkersWithin(listener, n, 10*time.Second)
}

// waitWorkersWithin is waitWorkers with its own deadline, for a drain that
// may take a program's own time (an exec worker's).
func (m *master) waitWorkersWithin(listener string, n int, d time.Duration) []int {
	m.t.Helper()
	deadline := time.Now().Add(d)
	for {
		pids := m.workerPids(listener)
		if len(pids) == n {
			return pids
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("listener %s: %d workers, want %d", listener, len(pids), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildHfork builds hfork into path (replacing it by rename, as a deploy
// would: a running binary's file cannot be written), with version as
// main.Version when not "".
func buildHfork(t *testing.T, path, version string) {
	t.Helper()
	args := []string{"build", "-o", path + ".new"}
	if version != "" {
		args = append(args, "-ldflags", "-X main.Version="+version)
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// load is a fixed number of keep-alive clients sending requests in a loop
// until stopped. Each client is a raw HTTP/1.1 connection, like wrk: no
// retries, so every request that the server drops counts as failed.
type load struct {
	addr     string
	path     string
	ok, fail atomic.Int64
	warm     atomic.Int64 // clients that were answered at least once
	clients  int
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	bodies   map[string]int
	errs     []string
}

func startLoad(t *testing.T, addr, path string, clients int) *load {
	l := &load{addr: addr, path: path, clients: clients, stop: make(chan struct{}), bodies: map[string]int{}}
	for range clients {
		l.wg.Add(1)
		go l.client()
	}
	t.Cleanup(l.finish)
	return l
}

func (l *load) client() {
	defer l.wg.Done()
	var conn net.Conn
	var br *bufio.Reader
	req := []byte("GET " + l.path + " HTTP/1.1\r\nHost: test\r\n\r\n")
	warm := false
	for {
		select {
		case <-l.stop:
			if conn != nil {
				conn.Close()
			}
			return
		default:
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
			if err != nil {
				l.failed("dial: " + err.Error())
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn, br = c, bufio.NewReader(c)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		resp, err := func() (*http.Response, error) {
			if _, err := conn.Write(req); err != nil {
				return nil, err
			}
			return http.ReadResponse(br, nil)
		}()
		if err != nil {
			l.failed(err.Error())
			conn.Close()
			conn = nil
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			l.failed(fmt.Sprintf("status %d err %v", resp.StatusCode, err))
		} else {
			l.ok.Add(1)
			if !warm {
				warm = true
				l.warm.Add(1)
			}
			l.mu.Lock()
			l.bodies[string(body)]++
			l.mu.Unlock()
		}
		if resp.Close {
			conn.Close()
			conn = nil
		}
	}
}

func (l *load) failed(why string) {
	l.fail.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, why)
	}
	l.mu.Unlock()
}

// waitServed waits until n more requests were answered: the load has run
// through whatever the test just did.
func (l *load) waitServed(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.ok.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests answered in 30s, want %d more (failed: %d)", l.ok.Load()-want+n, n, l.fail.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitWarm waits until every client was answered once: each holds its
// keep-alive connection.
func (l *load) waitWarm(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l.warm.Load() < int64(l.clients) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d clients answered in 30s", l.warm.Load(), l.clients)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finish stops the clients and waits for them.
func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *load) report(t *testing.T) {
	t.Logf("requests ok=%d failed=%d; bodies %v; first errors %v", l.ok.Load(), l.fail.Load(), l.bodies, l.errs)
}

// serveWeb starts a master on webConfig(port, "ok", extra) and waits until
// it serves; it returns the master and the port.
func serveWeb(t *testing.T, extra string) (*master, int) {
	t.Helper()
	port := mustFreePort(t)
	m := startMaster(t, "", webConfig(port, "ok", extra))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	return m, port
}

// loadOn starts the test's keep-alive clients on 127.0.0.1:port.
func loadOn(t *testing.T, port int) *load {
	return startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", clients)
}

// requireNoFailures stops the load, logs its report and fails the test if
// any request failed.
func (l *load) requireNoFailures(t *testing.T, during string) {
	t.Helper()
	l.finish()
	l.report(t)
	if n := l.fail.Load(); n != 0 {
		t.Errorf("%d requests failed %s", n, during)
	}
}

// waitBody polls url until its body is want.
func waitBody(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		_, body, err := get(url)
		if err == nil {
			if last = string(body); last == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: body %q, want %q", url, last, want)
}

func mustFreePort(t *testing.T) int {
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
