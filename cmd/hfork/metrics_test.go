package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
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

	"golang.org/x/net/http2"

	"github.com/hfork/hfork/engine"
	"github.com/hfork/hfork/hclconfig/testcert"
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

// hostRoutes are two host blocks with the same prefixes, and the
// listener's own route: shop answers "/api/" and "/", blog "/api/" alone
// (and "/up/" when up is an upstream's address).
func hostRoutes(up string) string {
	s := `
  route "/" {
    respond { body = "own\n" }
  }
  host "shop" {
    names = ["shop.test"]
    route "/api/" {
      respond { body = "shop api\n" }
    }
    route "/" {
      respond { body = "shop\n" }
    }
  }
  host "blog" {
    names = ["*.blog.test"]
    route "/api/" {
      respond { body = "blog api\n" }
    }`
	if up != "" {
		s += fmt.Sprintf(`
    route "/up/" {
      proxy { upstream = ["http://%s"] }
    }`, up)
	}
	return s + "\n  }\n"
}

// TestMetricsHosts: requests a host block serves count under that host's
// routes, on every path that answers them (the event loop and its proxy,
// net/http in the thread class, the loop's HTTP/2 over TLS): two hosts with
// the same prefix count apart, a host's unmatched path is its own "none",
// and the listener's own routes keep their series without a host label.
func TestMetricsHosts(t *testing.T) {
	mport, loopPort, threadPort, tlsPort, upPort := mustFreePort(t), mustFreePort(t), mustFreePort(t), mustFreePort(t), mustFreePort(t)
	dir := t.TempDir()
	testcert.Write(t, dir, "site", testcert.Options{Names: []string{"127.0.0.1"}})
	cfg := fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
}
reload { watch = false }
metrics {
  bind = "127.0.0.1:%d"
}
listener "up" {
  bind    = "127.0.0.1:%d"
  workers = 1
  route "/" {
    respond { body = "upstream\n" }
  }
}
listener "loop" {
  bind    = "127.0.0.1:%d"
  class   = "async"
  workers = 1
%s}
listener "thread" {
  bind    = "127.0.0.1:%d"
  class   = "thread"
  workers = 1
%s}
listener "tls" {
  bind    = "127.0.0.1:%d"
  class   = "async"
  workers = 1
  tls {
    cert = %q
    key  = %q
  }
%s}
`, mport, upPort, loopPort, hostRoutes(fmt.Sprintf("127.0.0.1:%d", upPort)), threadPort, hostRoutes(""),
		tlsPort, filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key"), hostRoutes(""))
	m := startMasterIn(t, dir, "", cfg)
	m.waitLog(`"msg":"hfork ready"`, 1, 15*time.Second)
	murl := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)

	h1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	send := func(c *http.Client, base, host, path, want string, n int) {
		t.Helper()
		for range n {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET %s%s (Host %s): %v", base, path, host, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != want {
				t.Fatalf("GET %s%s (Host %s): %d %q, want %q", base, path, host, resp.StatusCode, body, want)
			}
		}
	}
	for _, l := range []struct {
		name, base string
		c          *http.Client
	}{
		{"loop", fmt.Sprintf("http://127.0.0.1:%d", loopPort), h1},
		{"thread", fmt.Sprintf("http://127.0.0.1:%d", threadPort), h1},
		{"tls", fmt.Sprintf("https://127.0.0.1:%d", tlsPort), h2},
	} {
		send(l.c, l.base, "shop.test", "/api/x", "shop api\n", 3)
		send(l.c, l.base, "Shop.Test:443", "/x", "shop\n", 1)
		send(l.c, l.base, "a.blog.test", "/api/x", "blog api\n", 2)
		send(l.c, l.base, "other.test", "/api/x", "own\n", 4)
		if l.name == "loop" {
			send(l.c, l.base, "a.blog.test", "/up/x", "upstream\n", 5)
		}
		req, _ := http.NewRequest("GET", l.base+"/x", nil)
		req.Host = "a.blog.test"
		resp, err := l.c.Do(req)
		if err != nil || resp.StatusCode != 404 {
			t.Fatalf("%s: blog's unrouted path: %v %v, want a 404", l.name, resp, err)
		}
		resp.Body.Close()

		key := func(host, route, class string) string {
			if host == "" {
				return fmt.Sprintf(`hfork_http_requests_total{listener=%q,route=%q,status_class=%q}`, l.name, route, class)
			}
			return fmt.Sprintf(`hfork_http_requests_total{host=%q,listener=%q,route=%q,status_class=%q}`, host, l.name, route, class)
		}
		want := map[string]float64{
			key("shop", "/api/", "2xx"): 3, key("shop", "/", "2xx"): 1,
			key("blog", "/api/", "2xx"): 2, key("blog", "none", "4xx"): 1,
			key("", "/", "2xx"): 4,
		}
		if l.name == "loop" {
			want[key("blog", "/up/", "2xx")] = 5
		}
		var ms map[string]float64
		for k, v := range want {
			ms = waitMetric(t, murl, k, func(got float64) bool { return got >= v })
		}
		for k, v := range want {
			if ms[k] != v {
				t.Errorf("%s = %v, want %v", k, ms[k], v)
			}
		}
		for k := range ms {
			if strings.HasPrefix(k, "hfork_http_requests_total{") && strings.Contains(k, fmt.Sprintf("listener=%q", l.name)) && !hasKey(want, k) && ms[k] != 0 {
				t.Errorf("%s = %v: counted where nothing was sent", k, ms[k])
			}
		}
	}
	// The upstream counts what blog proxied to it under its own route.
	waitMetric(t, murl, `hfork_http_requests_total{listener="up",route="/",status_class="2xx"}`, func(v float64) bool { return v == 5 })
	_, body := scrape(t, murl)
	if bytes.Contains(body, []byte(`host=""`)) {
		t.Errorf("a series with an empty host label:\n%s", body)
	}
	promtool(t, body)
}
