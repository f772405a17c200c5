package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPlanPreview: -s plan names what a reload would do and the open
// connections it would drain, and leaves the running workers untouched
// (same pids, same generation, no reload in the log).
func TestPlanPreview(t *testing.T) {
	m, port := serveWeb(t, "")
	before := sorted(m.waitWorkers("web", 2))
	gen := statusJSON(t, m).Listeners[0].Gen
	idleConn(t, port)
	// The idle connection is in a heartbeat once status counts it.
	deadline := time.Now().Add(10 * time.Second)
	for open := 0; open == 0; {
		open = 0
		for _, w := range statusJSON(t, m).Listeners[0].Workers {
			open += w.Open
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle connection never showed in status")
		}
		if open == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}

	next := filepath.Join(m.dir, "next.hcl")
	if err := os.WriteFile(next, []byte(webConfig(port, "v2", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := hforkCmd("-s", "plan", "-f", next)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		"plan:\n  replace  listener \"web\": routes changed",
		fmt.Sprintf("replace listener \"web\" would drain gen %d (graceful_timeout 10000ms): 1 open connections, 1 idle", gen),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}

	same := filepath.Join(m.dir, "same.hcl")
	os.WriteFile(same, []byte(webConfig(port, "ok", "")), 0o644)
	if code, out, _ := hforkCmd("-s", "plan", "-f", same); code != 0 || !strings.Contains(out, "nothing would change") {
		t.Errorf("unchanged config: exit %d\n%s", code, out)
	}
	bad := filepath.Join(m.dir, "bad.hcl")
	os.WriteFile(bad, []byte(strings.Replace(webConfig(port, "ok", ""), `class   = "async"`, `class = "fast"`, 1)), 0o644)
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
