package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/engine"
)

// scrape reads the master's metrics as name{labels} -> value.
func scrape(t *testing.T, url string) (map[string]float64, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, body
}

// waitMetric scrapes until ok says the value of key is what the test waits
// for (workers report on their heartbeat).
func waitMetric(t *testing.T, url, key string, ok func(float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ms, _ := scrape(t, url)
		if v, found := ms[key]; found && ok(v) {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s = %v (present: %v), still not what the test waits for", key, ms[key], hasKey(ms, key))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasKey(m map[string]float64, k string) bool { _, ok := m[k]; return ok }

// promtool passes the exposition through `promtool check metrics`, when
// Debian's prometheus package is installed.
func promtool(t *testing.T, body []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not on PATH; exposition not linted")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, body)
	}
}

// TestMetrics: the master's metrics move when requests are served, never
// go backwards when a worker is killed or a reload replaces a generation,
// and pass promtool.
func TestMetrics(t *testing.T) {
	mport, port := mustFreePort(t), mustFreePort(t)
	cfg := func(body string) string {
		return fmt.Sprintf("metrics {\n  bind = \"127.0.0.1:%d\"\n}\n", mport) + webConfig(port, body, "")
	}
	m := startMaster(t, "", cfg("ok"))
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitBody(t, base, "ok")
	murl := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)

	const n = 20
	for range n {
		if _, _, err := get(base); err != nil {
			t.Fatal(err)
		}
	}
	ok2xx := `hfork_http_requests_total{listener="web",route="/",status_class="2xx"}`
	ms := waitMetric(t, murl, ok2xx, func(v float64) bool { return v >= n })
	served := ms[ok2xx]
	if c := ms[`hfork_http_request_duration_seconds_count{listener="web"}`]; c < served {
		t.Errorf("duration count %v < requests %v", c, served)
	}
	if ms[`hfork_http_response_body_bytes_total{listener="web"}`] < 2*n {
		t.Errorf("bytes %v, want at least %d", ms[`hfork_http_response_body_bytes_total{listener="web"}`], 2*n)
	}
	if ms[`hfork_workers{listener="web",state="ready"}`] != 2 {
		t.Errorf("ready workers %v", ms[`hfork_workers{listener="web",state="ready"}`])
	}
	_, body := scrape(t, murl)
	promtool(t, body)

	// A worker killed: its requests stay counted; the restart is counted.
	pids := m.waitWorkers("web", 2)
	syscall.Kill(pids[0], syscall.SIGKILL)
	ms = waitMetric(t, murl, `hfork_worker_restarts_total{listener="web",reason="exited"}`, func(v float64) bool { return v == 1 })
	if ms[ok2xx] < served {
		t.Fatalf("requests went from %v to %v after a worker was killed", served, ms[ok2xx])
	}
	served = ms[ok2xx]

	// A reload replaces the generation: once it is gone, the old
	// generation's requests are still there and the reload is counted.
	m.writeConfig(cfg("v2"))
	if _, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid"))); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, murl, `hfork_draining_generations{listener="web"}`, func(v float64) bool { return v == 0 })
	ms, body = scrape(t, murl)
	if ms[`hfork_reloads_total{result="ok"}`] != 1 {
		t.Errorf("reloads ok = %v", ms[`hfork_reloads_total{result="ok"}`])
	}
	if ms[ok2xx] < served {
		t.Fatalf("requests went from %v to %v across a reload", served, ms[ok2xx])
	}
	if ms[`hfork_drain_connections_total{listener="web",outcome="cut"}`] != 0 {
		t.Errorf("a clean reload cut connections: %v", ms[`hfork_drain_connections_total{listener="web",outcome="cut"}`])
	}
	promtool(t, body)
	waitBody(t, base, "v2")
	waitMetric(t, murl, ok2xx, func(v float64) bool { return v > served })
}
