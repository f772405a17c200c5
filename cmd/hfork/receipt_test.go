package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiptLine finds the numbers of the receipt line of one listener.
var receiptLine = regexp.MustCompile(`listener "web" gen \d+ in \d+ms: (\d+) connections handed over, (\d+) requests finished while draining, (\d+) idle connections closed, (\d+) connections cut`)

func receiptOf(t *testing.T, out string) [4]int {
	t.Helper()
	m := receiptLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no receipt for listener web in:\n%s", out)
	}
	var n [4]int
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return n
}

// idleConn opens a keep-alive connection, makes one request on it and
// leaves it idle.
func idleConn(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

// TestReloadWaitReceiptClean: a reload under load with idle keep-alive
// connections; --wait prints the plan, then a receipt with nothing cut,
// and exits 0.
func TestReloadWaitReceiptClean(t *testing.T) {
	m, port := serveWeb(t, `keepalive = "30s"`)
	idleConn(t, port)
	idleConn(t, port)
	l := startLoad(t, fmt.Sprintf("127.0.0.1:%d", port), "/", 4)
	// A client that was answered holds its keep-alive connection to an old
	// worker: the drain must hand it over.
	for deadline := time.Now().Add(10 * time.Second); l.ok.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the load got no answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.writeConfig(webConfig(port, "v2", `keepalive = "30s"`))
	code, out, errOut := hforkCmd("-s", "reload", "--wait", "-f", m.cfgPath)
	l.requireNoFailures(t, "through the reload")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, "reload complete:\n  replace  listener \"web\"") {
		t.Errorf("the plan does not come first:\n%s", out)
	}
	n := receiptOf(t, out)
	if n[3] != 0 || n[0]+n[2] < 2 || n[2] < 2 {
		t.Errorf("receipt handed=%d finished=%d idle=%d cut=%d: want the 2 idle connections closed and nothing cut\n%s", n[0], n[1], n[2], n[3], out)
	}
	if n[0] == 0 {
		t.Errorf("no connection of the load was handed over:\n%s", out)
	}
}

// TestReloadWaitReceiptCut: a client asked for a large file and stopped
// reading; with a short graceful_timeout the drain must cut it, and
// --wait says so with exit status 3.
func TestReloadWaitReceiptCut(t *testing.T) {
	root := t.TempDir()
	big := make([]byte, 64<<20)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	port, fport := mustFreePort(t), mustFreePort(t)
	cfg := func(body string) string {
		return strings.Replace(webConfig(port, body, `graceful_timeout = "1s"`), `graceful_timeout = "10s"`, "", 1) +
			fmt.Sprintf("\nlistener \"files\" {\n  bind = \"127.0.0.1:%d\"\n  workers = 1\n  graceful_timeout = \"1s\"\n  %s\n  route \"/\" {\n    static { root = %q }\n  }\n  route \"/x/\" {\n    respond { body = %q }\n  }\n}\n", fport, replaceLine(body), root, body)
	}
	m := startMaster(t, "", cfg("ok"))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	st := statusJSON(t, m)
	var files string
	for _, l := range st.Listeners {
		if l.Name == "files" {
			files = l.Binds[0]
		}
	}
	c, err := net.Dial("tcp", files)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
	// The worker reports the connection on a heartbeat: then the request
	// is in flight, and it stays so, since nothing reads the answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st = statusJSON(t, m)
		open := 0
		for _, l := range st.Listeners {
			if l.Name == "files" {
				for _, w := range l.Workers {
					open += w.Open
				}
			}
		}
		if open > 0 {
			break
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(st)
			t.Fatalf("the download never showed in status: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.writeConfig(cfg("v2"))
	code, out, errOut := hforkCmd("-s", "reload", "--wait", "-f", m.cfgPath)
	if code != exitCut {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitCut, out, errOut)
	}
	if !regexp.MustCompile(`listener "files" gen \d+ in \d+ms: 0 connections handed over, 0 requests finished while draining, 0 idle connections closed, 1 connections cut`).MatchString(out) {
		t.Errorf("receipt:\n%s", out)
	}
	if !strings.Contains(errOut, "stalled at graceful_timeout") {
		t.Errorf("stderr: %s", errOut)
	}
}
