package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// replaceLine is a config line a swap cannot apply, different for each
// distinct body: tests that drive replaces put it beside their body, since
// a change of routes alone is swapped into the running workers.
func replaceLine(body string) string {
	n, _ := replaceBodies.LoadOrStore(body, replaceN.Add(1))
	return fmt.Sprintf(`boot_timeout = "%ds"`, 30+n.(int64))
}

var (
	replaceBodies sync.Map
	replaceN      atomic.Int64
)

// swapConfig is listener "web" of class, two workers: a proxied upgrade
// route to upstream, static files from root, "/v/" answering "v<n>" and
// routes "/r1/".."/r<n>/": a config per n that only a swap tells apart.
// graceful_timeout is 1s, so a replace would cut the long connections.
func swapConfig(port int, class, root, upstream string, n int, extra string) string {
	var routes strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&routes, "  route \"/r%d/\" {\n    respond { body = \"r%d\" }\n  }\n", i, i)
	}
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }
listener "web" {
  bind             = "127.0.0.1:%d"
  class            = %q
  workers          = 2
  graceful_timeout = "1s"
  %s
  route "/ws/" {
    proxy { upstream = ["http://%s"] }
  }
  route "/files/" {
    static { root = %q }
  }
  route "/v/" {
    respond { body = "v%d" }
  }
%s}
`, port, class, extra, upstream, root, n, routes.String())
}

// echoUpstream answers an Upgrade request with 101 and then echoes every
// byte, as a WebSocket echo server would; it ends with the test.
func echoUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || !strings.EqualFold(req.Header.Get("Upgrade"), "test") {
					io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
				io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().String()
}

// upgraded is a client's upgraded connection through hfork.
type upgraded struct {
	c  net.Conn
	br *bufio.Reader
}

func openUpgraded(t *testing.T, addr string) *upgraded {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET /ws/ HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	return &upgraded{c: c, br: br}
}

// echo sends msg and requires it back.
func (u *upgraded) echo(t *testing.T, msg string) {
	t.Helper()
	u.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(u.c, msg); err != nil {
		t.Fatalf("upgraded stream: write %q: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(u.br, got); err != nil || string(got) != msg {
		t.Fatalf("upgraded stream: echo %q, got %q, %v", msg, got, err)
	}
}

// swapLine is the `-s reload` line of a swap, with its latency.
var swapLine = regexp.MustCompile(`swapped  listener "web": (\d+) workers in ([0-9.]+)ms`)

// swapReload asks for a reload, requires it to have swapped listener web
// on both its workers, and returns the swap's latency.
func swapReload(t *testing.T, m *master) time.Duration {
	t.Helper()
	code, out, errOut := hforkCmd("-s", "reload", "-f", m.cfgPath)
	if code != 0 {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, `swap     listener "web"`) {
		t.Fatalf("reload did not plan a swap:\n%s", out)
	}
	r := swapLine.FindStringSubmatch(out)
	if r == nil || r[1] != "2" {
		t.Fatalf("reload did not swap both workers:\n%s", out)
	}
	ms, _ := strconv.ParseFloat(r[2], 64)
	return time.Duration(ms * float64(time.Millisecond))
}

// sameSet reports whether a and b hold the same pids.
func sameSet(a, b []int) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// envInt is the environment's number for name, or def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// TestSwapKeepsLongConnections: 20 reloads that change other routes of a
// listener are swapped into its two workers, under keep-alive load, while
// a proxied upgraded stream and a download read at 1 MB/s stay open: the
// worker pids never change, each reload's new routes answer as soon as it
// returns, the stream echoes after every swap, the download gets every
// byte and no request of the load fails. The 200 MB download:
// HFORK_SWAP_DOWNLOAD_MB=200 (default 3); more reloads: HFORK_SWAP_RELOADS.
// The swaps' median and p90 latency are logged.
func TestSwapKeepsLongConnections(t *testing.T) {
	skipShort(t)
	size := int64(envInt(t, "HFORK_SWAP_DOWNLOAD_MB", 3)) << 20
	reloads := envInt(t, "HFORK_SWAP_RELOADS", 20)
	const rate = 1 << 20
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	upstream := echoUpstream(t)
	for _, class := range []string{"async", "thread"} {
		t.Run(class, func(t *testing.T) {
			port := mustFreePort(t)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			// A sync or thread worker whose oldest request outlives timeout
			// is killed: the download must fit in it.
			extra := fmt.Sprintf("timeout = \"%ds\"", 30+2*size/rate)
			m := startMaster(t, "", swapConfig(port, class, root, upstream, 0, extra))
			waitBody(t, "http://"+addr+"/v/", "v0")
			m.waitLog(`"msg":"worker ready"`, 2, 10*time.Second)
			pids := m.waitWorkers("web", 2)
			dl := startDownload(t, addr, "/files/big.bin", rate, 256<<10, nil)
			<-dl.read
			ws := openUpgraded(t, addr)
			ws.echo(t, "before")
			l := startLoad(t, addr, "/v/", 16)
			l.waitWarm(t)
			var took []time.Duration
			for i := 1; i <= reloads; i++ {
				m.writeConfig(swapConfig(port, class, root, upstream, i, extra))
				took = append(took, swapReload(t, m))
				// The reload answered once both workers switched: every
				// request from now on meets the new routes.
				for range 4 {
					for path, want := range map[string]string{"/v/": "v" + strconv.Itoa(i), "/r" + strconv.Itoa(i) + "/": "r" + strconv.Itoa(i)} {
						if _, body, err := get("http://" + addr + path); err != nil || string(body) != want {
							t.Fatalf("after swap %d: %s answered %q, %v; want %q", i, path, body, err, want)
						}
					}
				}
				ws.echo(t, "swap "+strconv.Itoa(i))
				if now := m.workerPids("web"); !sameSet(now, pids) {
					t.Fatalf("after swap %d: workers %v, want %v", i, now, pids)
				}
			}
			l.waitServed(t, 100)
			l.requireNoFailures(t, "during swap reloads")
			// The stream pings while the download runs on, as a WebSocket
			// client does: an idle one would meet the proxy's read_timeout.
			ping := time.NewTicker(5 * time.Second)
			defer ping.Stop()
			var n int64
		wait:
			for {
				select {
				case n = <-dl.got:
					break wait
				case <-ping.C:
					ws.echo(t, "ping")
				}
			}
			if n != size || dl.err != nil {
				t.Errorf("download got %d of %d bytes, err %v", n, size, dl.err)
			}
			ws.echo(t, "after")
			if strings.Contains(m.log.String(), `"msg":"worker draining"`) {
				t.Errorf("a worker was drained during swap reloads")
			}
			slices.Sort(took)
			t.Logf("%d swap reloads on 2 %s workers: median %v, p90 %v, max %v", len(took), class,
				took[len(took)/2], took[len(took)*9/10], took[len(took)-1])
		})
	}
}

// lowestFreeFD is the fd number pid's next open would get.
func lowestFreeFD(t *testing.T, pid int) uint64 {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	used := map[uint64]bool{}
	for _, e := range ents {
		n, _ := strconv.ParseUint(e.Name(), 10, 64)
		used[n] = true
	}
	var n uint64
	for used[n] {
		n++
	}
	return n
}

// holds reports whether pid has path open.
func holds(pid int, path string) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if to, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && to == path {
			return true
		}
	}
	return false
}

// TestSwapRefusedRollsBackEverywhere: a swap that adds an access log, with
// one of the two workers out of file descriptors (its RLIMIT_NOFILE lowered
// to what it has open), cannot be built there: that worker refuses, the
// reload fails at its swap stage, the worker that switched is sent the old
// config back and closes the access log it had opened, and every answer
// stays the old one. A later swap applies on both.
func TestSwapRefusedRollsBackEverywhere(t *testing.T) {
	root := t.TempDir()
	upstream := echoUpstream(t)
	port := mustFreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	m := startMaster(t, "", swapConfig(port, "async", root, upstream, 0, ""))
	waitBody(t, "http://"+addr+"/v/", "v0")
	m.waitLog(`"msg":"worker ready"`, 2, 10*time.Second)
	pids := m.waitWorkers("web", 2)
	starved := pids[0]

	var old unix.Rlimit
	if err := unix.Prlimit(starved, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = lowestFreeFD(t, starved)
	if err := unix.Prlimit(starved, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(m.dir, "access.log")
	m.writeConfig(swapConfig(port, "async", root, upstream, 1, `access_log { file = "access.log" }`))
	code, out, errOut := hforkCmd("-s", "reload", "-f", m.cfgPath)
	if err := unix.Prlimit(starved, unix.RLIMIT_NOFILE, &old, nil); err != nil {
		t.Fatal(err)
	}
	if code == 0 {
		t.Fatalf("reload with a worker that cannot open the access log succeeded:\n%s", out)
	}
	if msg := out + errOut; !strings.Contains(msg, "reload failed (swap)") || !strings.Contains(msg, "worker "+strconv.Itoa(starved)+" refused") ||
		!strings.Contains(msg, "too many open files") {
		t.Fatalf("reload answered:\n%s%s", out, errOut)
	}
	m.waitLog(`"msg":"swap rollback complete"`, 1, 10*time.Second)
	for range 10 {
		if _, body, err := get("http://" + addr + "/v/"); err != nil || string(body) != "v0" {
			t.Fatalf("after the failed swap /v/ answered %q, %v; want the old v0", body, err)
		}
		if resp, _, err := get("http://" + addr + "/r1/"); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("after the failed swap /r1/ answered %v, %v; want 404", resp, err)
		}
	}
	if now := m.workerPids("web"); !sameSet(now, pids) {
		t.Fatalf("workers %v after the failed swap, want %v", now, pids)
	}
	// The worker that switched closes the log of the table it left once no
	// request uses it.
	deadline := time.Now().Add(10 * time.Second)
	for holds(pids[1], logPath) {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d still holds %s after the rollback", pids[1], logPath)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, errOut = hforkCmd("-s", "status", "-f", m.cfgPath)
	if code != 0 || !strings.Contains(out, "reload failed (swap)") {
		t.Errorf("status after the failed swap:\n%s%s", out, errOut)
	}

	m.writeConfig(swapConfig(port, "async", root, upstream, 2, `access_log { file = "access.log" }`))
	swapReload(t, m)
	waitBody(t, "http://"+addr+"/r2/", "r2")
	for _, pid := range pids {
		if !holds(pid, logPath) {
			t.Errorf("worker %d does not write the access log after the swap", pid)
		}
	}
}

// TestSwapLatency: swap reloads of a listener with two idle workers, each
// applied on both with the pids unchanged; it logs the median and p90 of
// the time from the master's request to the last worker's answer (the
// issue's target: a median under 5 ms). HFORK_SWAP_RELOADS sets how many.
func TestSwapLatency(t *testing.T) {
	skipShort(t)
	reloads := envInt(t, "HFORK_SWAP_RELOADS", 30)
	upstream := echoUpstream(t)
	root := t.TempDir()
	for _, class := range []string{"async", "thread", "sync"} {
		t.Run(class, func(t *testing.T) {
			port := mustFreePort(t)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			m := startMaster(t, "", swapConfig(port, class, root, upstream, 0, ""))
			waitBody(t, "http://"+addr+"/v/", "v0")
			m.waitLog(`"msg":"worker ready"`, 2, 10*time.Second)
			pids := m.waitWorkers("web", 2)
			var took []time.Duration
			for i := 1; i <= reloads; i++ {
				m.writeConfig(swapConfig(port, class, root, upstream, i, ""))
				took = append(took, swapReload(t, m))
			}
			waitBody(t, "http://"+addr+"/v/", "v"+strconv.Itoa(reloads))
			if now := m.workerPids("web"); !sameSet(now, pids) {
				t.Fatalf("workers %v after %d swaps, want %v", now, reloads, pids)
			}
			slices.Sort(took)
			t.Logf("%d swap reloads on 2 idle %s workers: median %v, p90 %v, max %v", len(took), class,
				took[len(took)/2], took[len(took)*9/10], took[len(took)-1])
		})
	}
}
