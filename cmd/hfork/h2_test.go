package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/hfork/hfork/hclconfig/testcert"
)

func h2Config(port int, dir, body string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }

listener "h2" {
  bind    = "127.0.0.1:%d"
  class   = "async"
  workers = 2
  tls {
    cert = %q
    key  = %q
  }
  route "/" {
    respond { body = %q }
  }
}
`, port, filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key"), body)
}

// TestH2ReloadUnderLoad: HTTP/2 clients on kept connections while the
// master reloads twice; the old workers' GOAWAY moves the clients to the
// new ones and no request fails. curl and h2load (where installed) get
// their answers over HTTP/2 from the real workers too.
func TestH2ReloadUnderLoad(t *testing.T) {
	port := mustFreePort(t)
	dir := t.TempDir()
	testcert.Write(t, dir, "site", testcert.Options{Names: []string{"127.0.0.1"}})
	m := startMasterIn(t, dir, "", h2Config(port, dir, "gen 1\n"))
	m.waitLog(`"msg":"hfork ready"`, 1, 15*time.Second)
	url := fmt.Sprintf("https://127.0.0.1:%d/", port)

	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("curl", "-sk", "--http2", "-w", "%{http_version}", url).CombinedOutput()
		if err != nil || string(out) != "gen 1\n2" {
			t.Errorf("curl: %q %v", out, err)
		}
	}
	if _, err := exec.LookPath("h2load"); err == nil {
		out, err := exec.Command("h2load", "-n", "1000", "-c", "4", "-m", "10", url).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "1000 succeeded, 0 failed") {
			t.Errorf("h2load: %v\n%s", err, out)
		}
	}

	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	seen := make([]atomic.Bool, 4)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 20000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == 200 && strings.HasPrefix(string(b), "gen ") {
						seen[b[4]-'0'].Store(true)
						ok.Add(1)
						continue
					}
					if err == nil {
						err = fmt.Errorf("status %d body %q", resp.StatusCode, b)
					}
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	for gen := 2; gen <= 3; gen++ {
		deadline := time.Now().Add(15 * time.Second)
		for !seen[gen-1].Load() && ok.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		m.writeConfig(h2Config(port, dir, fmt.Sprintf("gen %d\n", gen)))
		m.signal(syscall.SIGHUP)
		for !seen[gen].Load() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !seen[gen].Load() {
			t.Fatalf("generation %d never answered", gen)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across two reloads; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
}
