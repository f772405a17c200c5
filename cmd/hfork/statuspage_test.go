package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/engine"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the status page test's screenshot to examples/status-page.png")

// chromium runs headless Chromium with args and returns its stdout. It
// runs in its own process group, which is killed when it is done, so no
// renderer outlives the test.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.Bytes()
}

// pageJSON fetches the status route as JSON.
func pageJSON(url string) (engine.PageData, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return engine.PageData{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return engine.PageData{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	var d engine.PageData
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

// TestStatusPage: the status route answers JSON for scripts and an HTML
// page that headless Chromium renders with every listener, its workers,
// and a chart of requests per second that has data.
func TestStatusPage(t *testing.T) {
	port, api := mustFreePort(t), mustFreePort(t)
	cfg := strings.Replace(webConfig(port, "ok", ""), `  route "/" {`, "  route \"/status/\" {\n    status {}\n  }\n  route \"/\" {", 1) +
		fmt.Sprintf("\nlistener \"api\" {\n  bind = \"127.0.0.1:%d\"\n  workers = 1\n  route \"/\" {\n    respond { body = \"api\" }\n  }\n}\n", api)
	m := startMaster(t, "", cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitBody(t, base, "ok")
	url := base + "status/"

	// Requests over a few seconds give the chart points above zero; the
	// master samples once a second.
	deadline := time.Now().Add(20 * time.Second)
	for {
		for range 20 {
			get(base)
		}
		d, err := pageJSON(url)
		if err == nil && len(d.Listeners) == 2 && nonzero(d, "web") {
			if d.Pid != m.pid() || d.Listeners[0].Name != "web" || d.Listeners[1].Name != "api" || len(d.Listeners[0].Workers) != 2 {
				t.Fatalf("page data: %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status JSON never had a rate for web: %+v %v", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A reload, so the page has one to show.
	m.writeConfig(strings.Replace(cfg, `body = "api"`, `body = "api v2"`, 1))
	if _, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid"))); err != nil {
		t.Fatal(err)
	}
	for {
		d, err := pageJSON(url)
		if err == nil && d.LastReload != nil {
			break
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("the page never showed the reload: %v", err)
		}
		get(base)
		time.Sleep(100 * time.Millisecond)
	}

	dom := string(chromium(t, "--dump-dom", "--virtual-time-budget=3000", url))
	for _, want := range []string{`data-name="web"`, `data-name="api"`, `class="worker"`, "class async", "hfork status",
		"master pid " + strconv.Itoa(m.pid()), `swap     listener "api": routes changed; in place`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, dom)
		}
	}
	vals := regexp.MustCompile(`data-values="([0-9.,]*)"`).FindAllStringSubmatch(dom, -1)
	if len(vals) != 2 {
		t.Fatalf("want a chart per listener, got %d", len(vals))
	}
	hasData := false
	for _, v := range strings.Split(vals[0][1], ",") {
		if f, _ := strconv.ParseFloat(v, 64); f > 0 {
			hasData = true
		}
	}
	if !hasData {
		t.Errorf("the web chart has no data: %q", vals[0][1])
	}
	if strings.Contains(dom, "http://") && regexp.MustCompile(`(src|href)="https?://`).MatchString(dom) {
		t.Errorf("the page loads external assets")
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, "--screenshot="+shot, "--window-size=1000,760", "--hide-scrollbars", "--virtual-time-budget=3000", url)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10000 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "..", "examples", "status-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func nonzero(d engine.PageData, listener string) bool {
	for _, r := range d.Rates {
		if r.Listener == listener {
			for _, v := range r.PerSecond {
				if v > 0 {
					return true
				}
			}
		}
	}
	return false
}

// TestStatusRouteInHost: a status route inside a host block gets the
// master's data, as one of the listener's own does.
func TestStatusRouteInHost(t *testing.T) {
	port := mustFreePort(t)
	hosts := "  host \"ops\" {\n    names = [\"ops.test\"]\n    route \"/status/\" {\n      status {}\n    }\n  }\n"
	m := startMaster(t, "", webConfig(port, "ok", hosts))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/status/", port), nil)
	req.Host = "ops.test"
	req.Header.Set("Accept", "application/json")
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var d engine.PageData
		derr := json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if derr != nil || len(d.Listeners) != 1 || d.Listeners[0].Name != "web" || d.Pid != m.pid() {
				t.Fatalf("page data %+v %v", d, derr)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host's status route still answers %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
