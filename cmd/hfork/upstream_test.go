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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/engine"
)

// Proxy tests with real upstreams: processes the test can kill, stop with
// SIGSTOP, or start again on the same port, behind a real master, under
// bounded keep-alive load on loopback.

const envTestUpstream = "HFORK_TEST_UPSTREAM"

// serveTestUpstream is the test binary as an upstream: "name,mode,addr".
// It answers every request with its name (mode "ok"), after 200ms
// ("slow"), or resets the connection once a request arrives ("reset"),
// and prints "ready" once it listens.
func serveTestUpstream(spec string) int {
	parts := strings.SplitN(spec, ",", 3)
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "want name,mode,addr")
		return 2
	}
	name, mode, addr := parts[0], parts[1], parts[2]
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	if mode == "reset" {
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			go func() {
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err == nil {
					c.(*net.TCPConn).SetLinger(0) // close sends RST
				}
				c.Close()
			}()
		}
	}
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == "slow" {
			time.Sleep(200 * time.Millisecond)
		}
		io.WriteString(w, name)
	}))
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// testUpstream is one upstream process.
type testUpstream struct {
	t    *testing.T
	name string
	addr string
	cmd  *exec.Cmd
}

// startUpstream starts an upstream on addr ("" picks a port) and waits
// until it listens.
func startUpstream(t *testing.T, name, mode, addr string) *testUpstream {
	t.Helper()
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", mustFreePort(t))
	}
	u := &testUpstream{t: t, name: name, addr: addr}
	u.cmd = exec.Command(os.Args[0])
	u.cmd.Env = append(os.Environ(), envTestUpstream+"="+name+","+mode+","+addr)
	u.cmd.Stderr = os.Stderr
	out, err := u.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("upstream %s: %q %v", name, line, err)
	}
	return u
}

// kill ends the upstream at once (SIGKILL), once.
func (u *testUpstream) kill() {
	if u.cmd.ProcessState == nil {
		u.cmd.Process.Signal(syscall.SIGCONT)
		u.cmd.Process.Kill()
		u.cmd.Wait()
	}
}

func (u *testUpstream) signal(sig syscall.Signal) {
	if err := u.cmd.Process.Signal(sig); err != nil {
		u.t.Fatal(err)
	}
}

// balancedConfig is a web listener on port that proxies "/" with the proxy
// block's body.
func balancedConfig(port int, proxy string) string {
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
  route "/" {
    proxy {
      %s
    }
  }
}
`, port, proxy)
}

func upstreamList(ups ...*testUpstream) string {
	var s []string
	for _, u := range ups {
		s = append(s, fmt.Sprintf("%q", "http://"+u.addr))
	}
	return "upstream = [" + strings.Join(s, ", ") + "]"
}

// waitOK waits until the load has n more good answers than now.
func (l *load) waitOK(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.ok.Load() < want {
		if time.Now().After(deadline) {
			l.report(t)
			t.Fatalf("load: %d good answers, want %d", l.ok.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bodyCount is how often the load saw body.
func (l *load) bodyCount(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies[body]
}

const proxyClients = 16

// waitHealth waits until n lines of the log say msg ("upstream healthy"
// or "upstream unhealthy") about u, for a reason that begins with reason:
// one per worker, as each worker keeps its own health.
func waitHealth(t *testing.T, m *master, n int, msg string, u *testUpstream, reason string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		count := countHealth(m, msg, u, reason)
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d × %q about %s for %q, want %d", count, msg, u.addr, reason, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countHealth is how many lines of the log say msg about u, for a reason
// that begins with reason.
func countHealth(m *master, msg string, u *testUpstream, reason string) int {
	want := fmt.Sprintf(`"upstream":%q,"reason":"%s`, u.addr, reason)
	count := 0
	for _, line := range strings.Split(m.log.String(), "\n") {
		if strings.Contains(line, `"msg":"`+msg+`"`) && strings.Contains(line, want) {
			count++
		}
	}
	return count
}

// TestProxyKillOneOfThree: an upstream killed under load fails no GET:
// the refused connections go to the other two, and it is marked down.
func TestProxyKillOneOfThree(t *testing.T) {
	skipShort(t)
	a, b, c := startUpstream(t, "a", "ok", ""), startUpstream(t, "b", "ok", ""), startUpstream(t, "c", "ok", "")
	port := mustFreePort(t)
	m := startMaster(t, "", balancedConfig(port, upstreamList(a, b, c)+"\nretries = 2"))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "a")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 300)
	b.kill()
	// Answers b wrote before it died may still reach clients after the
	// first worker marks it down: count from when both workers have, and
	// every client has had time for another answer. The load's clients
	// may all sit on one worker; new connections reach the other too.
	deadline := time.Now().Add(20 * time.Second)
	for countHealth(m, "upstream unhealthy", b, "") < 2 && time.Now().Before(deadline) {
		get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	}
	waitHealth(t, m, 2, "upstream unhealthy", b, "")
	l.waitOK(t, 2*proxyClients)
	before := l.bodyCount("b")
	l.waitOK(t, 2000)
	l.requireNoFailures(t, "with one of three upstreams killed")
	if l.bodyCount("a") == 0 || l.bodyCount("c") == 0 || l.bodyCount("b") != before {
		t.Errorf("bodies %v (b had %d when killed)", l.bodies, before)
	}
}

// TestProxyHungUpstream: an upstream hung with SIGSTOP stops getting
// requests once the health check times out on it (each worker probes by
// itself), and gets them again once it passes.
func TestProxyHungUpstream(t *testing.T) {
	skipShort(t)
	a, b := startUpstream(t, "a", "ok", ""), startUpstream(t, "b", "ok", "")
	port := mustFreePort(t)
	m := startMaster(t, "", balancedConfig(port, upstreamList(a, b)+`
      read_timeout = "1s"
      health_check {
        path     = "/health"
        interval = "300ms"
        timeout  = "300ms"
      }`))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "a")
	b.signal(syscall.SIGSTOP)
	waitHealth(t, m, 2, "upstream unhealthy", b, "health check: ")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 1000)
	l.requireNoFailures(t, "with a hung upstream marked down")
	if l.bodyCount("b") != 0 {
		t.Errorf("the hung upstream answered: %v", l.bodies)
	}
	b.signal(syscall.SIGCONT)
	waitHealth(t, m, 2, "upstream healthy", b, "health check passed")
	l = startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 200)
	l.requireNoFailures(t, "once the upstream is back")
	if l.bodyCount("b") == 0 {
		t.Errorf("the upstream that came back got nothing: %v", l.bodies)
	}
}

// TestProxyHungUpstreamPassive: without a health check, read_timeout
// and max_fails take a hung upstream out for fail_timeout.
func TestProxyHungUpstreamPassive(t *testing.T) {
	skipShort(t)
	a, b := startUpstream(t, "a", "ok", ""), startUpstream(t, "b", "ok", "")
	port := mustFreePort(t)
	m := startMaster(t, "", balancedConfig(port, upstreamList(a, b)+`
      read_timeout = "300ms"
      max_fails    = 1
      fail_timeout = "1m"`))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "a")
	b.signal(syscall.SIGSTOP)
	// Each worker learns by one request that times out (a 504).
	mark := fmt.Sprintf(`"upstream":%q,"reason":"read timeout`, b.addr)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(m.log.String(), mark) < 2 && time.Now().Before(deadline) {
		get(url)
	}
	waitHealth(t, m, 2, "upstream unhealthy", b, "read timeout")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 1000)
	l.requireNoFailures(t, "with a hung upstream marked down")
	if l.bodyCount("b") != 0 {
		t.Errorf("the hung upstream answered: %v", l.bodies)
	}
}

// TestProxyResettingUpstream: an upstream that resets every connection
// costs no GET: each one goes to the other upstream (retries), even while
// the resetting one is never marked down (max_fails = 0).
func TestProxyResettingUpstream(t *testing.T) {
	skipShort(t)
	a, r := startUpstream(t, "a", "ok", ""), startUpstream(t, "r", "reset", "")
	port := mustFreePort(t)
	m := startMaster(t, "", balancedConfig(port, upstreamList(a, r)+"\nmax_fails = 0"))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "a")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 1000)
	l.requireNoFailures(t, "with an upstream that resets connections")
	m.waitLog(`"msg":"upstream failed; trying another"`, 1, time.Second)
	if strings.Contains(m.log.String(), `"msg":"upstream unhealthy"`) {
		t.Error("an upstream was marked down with max_fails = 0")
	}
}

// TestProxyLeastConnSlow: least_conn sends a slow upstream (200ms an
// answer) only a small share of the requests, where round robin would
// send it half.
func TestProxyLeastConnSlow(t *testing.T) {
	skipShort(t)
	a, s := startUpstream(t, "a", "ok", ""), startUpstream(t, "s", "slow", "")
	port := mustFreePort(t)
	startMaster(t, "", balancedConfig(port, upstreamList(a, s)+`
      policy = "least_conn"`))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "a")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 2000)
	l.requireNoFailures(t, "under least_conn")
	if total := l.ok.Load(); l.bodyCount("s") == 0 || int64(l.bodyCount("s"))*10 > total {
		t.Errorf("the slow upstream answered %d of %d; want some, and under a tenth", l.bodyCount("s"), total)
	}
}

// TestProxyFirstFailsOverAndBack: policy "first" sends everything to the
// first upstream, to the second while the first is down, and to the first
// again once its health check passes, without failing a request.
func TestProxyFirstFailsOverAndBack(t *testing.T) {
	skipShort(t)
	a, b := startUpstream(t, "a", "ok", ""), startUpstream(t, "b", "ok", "")
	port := mustFreePort(t)
	m := startMaster(t, "", balancedConfig(port, upstreamList(a, b)+`
      policy = "first"
      health_check {
        interval = "200ms"
        timeout  = "200ms"
      }`))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "a")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 500)
	if l.bodyCount("b") != 0 {
		t.Fatalf("the backup answered while the primary was up: %v", l.bodies)
	}
	a.kill()
	l.waitOK(t, 1000)
	if l.bodyCount("b") == 0 {
		t.Fatalf("no failover: %v", l.bodies)
	}
	waitHealth(t, m, 2, "upstream unhealthy", a, "")
	a = startUpstream(t, "a", "ok", a.addr)
	waitHealth(t, m, 2, "upstream healthy", a, "health check passed")
	l.waitOK(t, 2*proxyClients) // the answers b had in flight
	before := l.bodyCount("b")
	l.waitOK(t, 1000)
	l.requireNoFailures(t, "failing over and back")
	if l.bodyCount("b") != before {
		t.Errorf("the backup still answered once the primary was back: %v", l.bodies)
	}
}

// TestExampleProxyUnixReload: examples/proxy-unix.hcl, its app listener
// (Python workers on a unix socket) reloaded 10 times under keep-alive
// load through the proxy, fails no request.
func TestExampleProxyUnixReload(t *testing.T) {
	skipShort(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "proxy-unix.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, sub := range []string{"apps", "www"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join("..", "..", "examples", sub))); err != nil {
			t.Fatal(err)
		}
	}
	port := mustFreePort(t)
	cfg := strings.Replace(string(src), `"127.0.0.1:8080"`, fmt.Sprintf(`"127.0.0.1:%d"`, port), 1)
	cfg = strings.Replace(cfg, `format = "text"`, `format = "json"`, 1)
	cfg += "\nreload { watch = false }\n" // the test reloads, not the file watcher
	m := startMasterIn(t, dir, "", cfg)
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "hello from python\n")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	l.waitOK(t, 200)
	for i := 1; i <= 10; i++ {
		// A changed env makes the plan replace the app's workers.
		m.writeConfig(strings.Replace(cfg, `class       = "exec"`, fmt.Sprintf(`class       = "exec"
  env         = { RELOAD = "%d" }`, i), 1))
		out, err := engine.ControlReload(engine.ControlPath(filepath.Join(dir, "hfork.pid")))
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if !strings.Contains(out, `replace  listener "app"`) {
			t.Fatalf("reload %d: plan %q", i, out)
		}
		l.waitOK(t, 200) // served by the new workers
	}
	l.requireNoFailures(t, "through the proxy across 10 reloads of its unix-socket upstream")
	m.waitWorkers("app", 2)
}

// TestProxyProtocolClasses: every class that serves routes takes the
// client's address from a raw PROXY header (v1 and v2) and refuses a
// connection without one.
func TestProxyProtocolClasses(t *testing.T) {
	for _, class := range []string{"sync", "thread", "async"} {
		t.Run(class, func(t *testing.T) {
			port := mustFreePort(t)
			m := startMaster(t, "", fmt.Sprintf(`
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "web" {
  bind           = "127.0.0.1:%d"
  class          = %q
  workers        = 1
  proxy_protocol = true
  access_log {
    file   = "access.log"
    format = "json"
  }
  route "/" {
    respond { body = "ok" }
  }
}
`, port, class))
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			v2 := "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + string([]byte{198, 51, 100, 9, 127, 0, 0, 1, 0x30, 0x39, 0, 80})
			send := func(header string) string {
				deadline := time.Now().Add(10 * time.Second)
				for {
					c, err := net.Dial("tcp", addr)
					if err == nil {
						c.SetDeadline(time.Now().Add(5 * time.Second))
						io.WriteString(c, header+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
						b, _ := io.ReadAll(c)
						c.Close()
						if len(b) > 0 || header == "" {
							return string(b)
						}
					}
					if time.Now().After(deadline) {
						t.Fatalf("no answer: %v", err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			for _, h := range []string{"PROXY TCP4 192.0.2.7 127.0.0.1 54321 80\r\n", v2} {
				if got := send(h); !strings.HasSuffix(got, "\r\n\r\nok") {
					t.Errorf("answer %q", got)
				}
			}
			if got := send(""); got != "" {
				t.Errorf("without a header: %q, want nothing", got)
			}
			m.signal(syscall.SIGUSR1) // reopen: the access log is flushed
			deadline := time.Now().Add(10 * time.Second)
			for {
				b, _ := os.ReadFile(filepath.Join(m.dir, "access.log"))
				if strings.Contains(string(b), `"remote":"192.0.2.7"`) && strings.Contains(string(b), `"remote":"198.51.100.9"`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("access log:\n%s", b)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestProxyUnixHforkUpstreamReload: an upstream that is an hfork
// listener of the same config on a unix socket, reloaded 10 times under
// keep-alive load through the loop's proxy, fails no request.
func TestProxyUnixHforkUpstreamReload(t *testing.T) {
	skipShort(t)
	port := mustFreePort(t)
	conf := func(body string) string {
		return fmt.Sprintf(`
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "web" {
  bind    = "127.0.0.1:%d"
  class   = "async"
  workers = 2
  route "/" {
    proxy { upstream = "unix:api.sock" }
  }
}
listener "api" {
  bind      = "unix:api.sock"
  class     = "async"
  workers   = 2
  keepalive = "1s"
  graceful_timeout = "10s"
  %s
  route "/" {
    respond { body = %q }
  }
}
`, port, replaceLine(body), body)
	}
	m := startMaster(t, "", conf("v0"))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "v0")
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", proxyClients)
	for i := 1; i <= 10; i++ {
		m.writeConfig(conf(fmt.Sprintf("v%d", i)))
		out, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid")))
		if err != nil || !strings.Contains(out, `replace  listener "api"`) {
			t.Fatalf("reload %d: %q %v", i, out, err)
		}
		before := l.bodyCount(fmt.Sprintf("v%d", i))
		deadline := time.Now().Add(10 * time.Second)
		for l.bodyCount(fmt.Sprintf("v%d", i)) < before+200 { // the new workers answer
			if time.Now().After(deadline) {
				t.Fatalf("reload %d never served: %v", i, l.bodies)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	l.requireNoFailures(t, "through the proxy across 10 reloads of its unix-socket hfork upstream")
}
