package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dialWhenOpen connects to addr as soon as the master listens on it.
func dialWhenOpen(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFailingListenerAnswers: a built-in listener whose worker cannot
// start (its access log path is a directory) and an exec listener whose
// program exits at once. A client that connected at start gets a 503 with
// Retry-After from the master within boot_timeout plus a second, and an
// exec client gets an error, not a hang; the healthy listener serves
// throughout. The log says each failure once, and the master says it
// started with failing listeners, not "hfork ready". Once the access log
// can be opened, the worker boots and answers again.
func TestFailingListenerAnswers(t *testing.T) {
	good, bad, prog := mustFreePort(t), mustFreePort(t), mustFreePort(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	if err := os.Mkdir(logPath, 0o755); err != nil {
		t.Fatal(err)
	}
	const boot = 2 * time.Second
	m := startMaster(t, "", fmt.Sprintf(`
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "good" {
  bind    = "127.0.0.1:%d"
  workers = 1
  route "/" {
    respond { body = "good" }
  }
}
listener "bad" {
  bind         = "127.0.0.1:%d"
  workers      = 1
  boot_timeout = "%s"
  access_log { file = %q }
  route "/" {
    respond { body = "fixed" }
  }
}
listener "prog" {
  bind         = "127.0.0.1:%d"
  class        = "exec"
  workers      = 1
  boot_timeout = "%s"
  command      = ["/bin/sh", "-c", "echo cannot start >&2; exit 3"]
}
`, good, bad, boot, logPath, prog, boot))

	httpClient := dialWhenOpen(t, "127.0.0.1:"+strconv.Itoa(bad))
	defer httpClient.Close()
	connected := time.Now()
	execClient := dialWhenOpen(t, "127.0.0.1:"+strconv.Itoa(prog))
	defer execClient.Close()

	httpClient.SetDeadline(connected.Add(boot + time.Second))
	io.WriteString(httpClient, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(httpClient), nil)
	if err != nil {
		t.Fatalf("client of the failing listener: %v after %v, want a 503 within boot_timeout+1s", err, time.Since(connected))
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("failing listener: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	t.Logf("503 after %v", time.Since(connected).Round(time.Millisecond))

	execClient.SetDeadline(connected.Add(boot + time.Second))
	_, err = execClient.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client of the failing exec listener: %v, want a reset or end of file within boot_timeout+1s", err)
	}

	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", good), "good")
	m.waitLog(`"msg":"started with failing listeners"`, 1, 10*time.Second)
	if !strings.Contains(m.log.String(), `"failing":["bad","prog"]`) {
		t.Errorf("the start line does not name both failing listeners")
	}
	m.waitLog(`"msg":"listener failing: no worker ready","listener":"prog"`, 1, 10*time.Second)
	// A few more failed boots, still one line per listener.
	m.waitLog(`"msg":"worker failed to boot; retrying","listener":"bad"`, 6, 15*time.Second)
	for _, l := range []string{"bad", "prog"} {
		line := `"msg":"listener failing: no worker ready","listener":"` + l + `"`
		if n := strings.Count(m.log.String(), line); n != 1 {
			t.Errorf("listener %s: failing logged %d times, want once", l, n)
		}
	}
	for line := range strings.SplitSeq(m.log.String(), "\n") {
		if strings.Contains(line, `"msg":"listener failing: no worker ready","listener":"prog"`) &&
			!strings.Contains(line, `"cause":"exit status 3: cannot start"`) {
			t.Errorf("the exec listener's failing line does not give the program's exit and last words: %s", line)
		}
	}

	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", bad), "fixed")
	m.waitLog(`"msg":"listener recovered: a worker is ready","listener":"bad"`, 1, 10*time.Second)
	if strings.Contains(m.log.String(), `"msg":"hfork ready"`) {
		t.Errorf("hfork ready logged while listener prog still fails")
	}
}
