package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPlanPreview: -s plan names what a reload would do and the open
// connections it would drain, and leaves the running workers untouched
// (same pids, same generation, no reload in the log).
func TestPlanPreview(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "big.bin"), make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	port, fport := mustFreePort(t), mustFreePort(t)
	// files is a thread listener: net/http serves its downloads, and the
	// worker names the requests in flight.
	cfg := func(body string) string {
		return webConfig(port, body, "") + fmt.Sprintf("\nlistener \"files\" {\n  bind = \"127.0.0.1:%d\"\n  class = \"thread\"\n  workers = 1\n  %s\n  route \"/\" {\n    static { root = %q }\n  }\n  route \"/x/\" {\n    respond { body = %q }\n  }\n}\n", fport, replaceLine(body), root, body)
	}
	m := startMaster(t, "", cfg("ok"))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	before := sorted(m.waitWorkers("web", 2))
	gen := statusJSON(t, m).Listeners[0].Gen
	idleConn(t, port)
	dl, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", fport))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	dl.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(dl, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
	// The idle connection and the download are in a heartbeat once status
	// shows them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := statusJSON(t, m)
		open, inflight := 0, 0
		for _, w := range st.Listeners[0].Workers {
			open += w.Open
		}
		for _, w := range st.Listeners[1].Workers {
			inflight += w.Inflight
		}
		if open > 0 && inflight > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle connection (%d) or the download (%d) never showed in status", open, inflight)
		}
		time.Sleep(50 * time.Millisecond)
	}

	next := filepath.Join(m.dir, "next.hcl")
	if err := os.WriteFile(next, []byte(cfg("v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := hforkCmd("-s", "plan", "-f", next)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		"plan:\n  replace  listener \"web\": boot_timeout, routes changed\n  replace  listener \"files\": boot_timeout, routes changed",
		fmt.Sprintf("replace listener \"web\" would drain gen %d (graceful_timeout 10000ms): 1 open connections, 1 idle", gen),
		"1 requests in flight, the oldest GET /big.bin for ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`\n  pid \d+: request in flight for [0-9.]+m?s: GET /big.bin\n`).MatchString(out) {
		t.Errorf("the download is not named:\n%s", out)
	}

	same := filepath.Join(m.dir, "same.hcl")
	os.WriteFile(same, []byte(cfg("ok")), 0o644)
	if code, out, _ := hforkCmd("-s", "plan", "-f", same); code != 0 || !strings.Contains(out, "nothing would change") {
		t.Errorf("unchanged config: exit %d\n%s", code, out)
	}
	bad := filepath.Join(m.dir, "bad.hcl")
	os.WriteFile(bad, []byte(strings.Replace(cfg("ok"), `class   = "async"`, `class = "fast"`, 1)), 0o644)
	if code, _, errOut := hforkCmd("-s", "plan", "-f", bad); code != 1 || !strings.Contains(errOut, "bad.hcl:") {
		t.Errorf("invalid config: exit %d\n%s", code, errOut)
	}

	if after := sorted(m.workerPids("web")); !slices.Equal(before, after) {
		t.Errorf("workers %v became %v", before, after)
	}
	st := statusJSON(t, m)
	if st.Listeners[0].Gen != gen || st.LastReload != nil {
		t.Errorf("gen %d -> %d, last reload %+v: the preview applied something", gen, st.Listeners[0].Gen, st.LastReload)
	}
	if strings.Contains(m.log.String(), "reloading") {
		t.Errorf("the master reloaded:\n%s", m.log.String())
	}
	if _, body, _ := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); string(body) != "ok" {
		t.Errorf("body %q after previews", body)
	}
}
