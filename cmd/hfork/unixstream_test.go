package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// streamConfig is listener "files" on bind, of class with a one-second
// graceful_timeout, proxying "/s/" to the unix socket sock; body tells
// generations apart.
func streamConfig(bind, class, sock, body string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }
listener "files" {
  bind             = %q
  class            = %q
  workers          = 1
  graceful_timeout = "1s"
  shutdown_timeout = "1m"
  route "/s/" {
    proxy { upstream = "unix:%s" }
  }
  route "/v/" {
    respond { body = %q }
  }
}
`, bind, class, sock, body)
}

// TestReplaceKeepsMovingUnixStream: a proxied answer streamed from an
// upstream on a unix socket, still moving when graceful_timeout passes
// after a reload that replaces its worker, is let finish: the client gets
// every chunk and the receipt counts it among the transfers let run, none
// cut. For the event loop (async) and net/http (thread), with the client
// on TCP and on a unix socket (no kernel byte counters: the worker's own).
func TestReplaceKeepsMovingUnixStream(t *testing.T) {
	skipShort(t)
	// The upstream sends a chunk every 100ms until the test releases it,
	// once the old worker's drain has reached graceful_timeout (its log
	// line), and then the rest at once: the transfer is moving at the
	// timeout however long the new worker took to start. chunks bounds
	// it at 20s.
	const chunks, chunk = 200, 16 << 10
	var release atomic.Pointer[chan struct{}]
	dir, err := os.MkdirTemp("", "hf") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "up.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(chunks*chunk))
		w.WriteHeader(200)
		piece := []byte(strings.Repeat("x", chunk))
		rel := *release.Load()
		for range chunks {
			if _, err := w.Write(piece); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-rel:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	for _, tc := range []struct{ class, client string }{{"async", "tcp"}, {"thread", "tcp"}, {"async", "unix"}, {"thread", "unix"}} {
		t.Run(tc.class+"/"+tc.client, func(t *testing.T) {
			class := tc.class
			bind := "127.0.0.1:" + strconv.Itoa(mustFreePort(t))
			network, addr := "tcp", bind
			if tc.client == "unix" {
				network, addr = "unix", filepath.Join(dir, class+".sock")
				bind = "unix:" + addr
			}
			m := startMaster(t, "", streamConfig(bind, class, sock, "v1"))
			waitFor := time.Now().Add(15 * time.Second)
			for {
				if c, err := net.Dial(network, addr); err == nil {
					c.Close()
					break
				}
				if time.Now().After(waitFor) {
					t.Fatalf("%s %s: nothing listens", network, addr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			rel := make(chan struct{})
			release.Store(&rel)
			c, err := net.Dial(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			io.WriteString(c, "GET /s/ HTTP/1.1\r\nHost: t\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan int64, 1)
			go func() { n, _ := io.Copy(io.Discard, resp.Body); got <- n }()
			cfg := strings.Replace(streamConfig(bind, class, sock, "v2"), `workers          = 1`, "workers          = 1\n  timeout = \"31s\"", 1)
			m.writeConfig(cfg)
			var code int
			var out, errOut string
			reloaded := make(chan struct{})
			go func() {
				defer close(reloaded)
				code, out, errOut = hforkCmd("-s", "reload", "--wait", "-f", m.cfgPath)
			}()
			m.waitLog("worker drain reached graceful_timeout", 1, 25*time.Second)
			close(rel)
			<-reloaded
			if n := <-got; n != chunks*chunk {
				t.Errorf("stream got %d of %d bytes", n, chunks*chunk)
			}
			if code != 0 || !strings.Contains(out, `replace  listener "files"`) {
				t.Errorf("reload: exit %d\n%s%s", code, out, errOut)
			}
			r := transferReceipt.FindStringSubmatch(out)
			if r == nil || r[1] != "0" || r[3] != "1" {
				t.Errorf("receipt: want 0 cut, 1 let finish past graceful_timeout:\n%s", out)
			}
		})
	}
}
