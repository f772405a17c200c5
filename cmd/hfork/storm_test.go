package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// drainingLine is the master's count of a listener's draining
// generations, logged each time a reload retires one.
var drainingLine = regexp.MustCompile(`"msg":"generation draining"[^\n]*"draining":(\d+)`)

// TestReloadStormBound: 30 edits, each followed by SIGHUP, in a few
// seconds under keep-alive load, while every generation keeps an idle
// keep-alive connection (so each would drain for keepalive, 20s). With
// max_draining_generations = 2 no request fails, no commit ever leaves
// more than 2 generations draining, the bound was reached (the oldest
// generation was closed first), and the last edit is what serves.
func TestReloadStormBound(t *testing.T) {
	skipShort(t)
	const edits, limit = 30, 2
	extra := `keepalive = "20s"
  graceful_timeout = "20s"`
	port := mustFreePort(t)
	mk := func(body string) string {
		return strings.Replace(webConfig(port, body, extra), `graceful_timeout = "10s"`, "", 1)
	}
	mport := mustFreePort(t)
	withBound := func(body string) string {
		return strings.Replace(mk(body), "reload { watch = false }",
			fmt.Sprintf("reload {\n  watch = false\n  max_draining_generations = %d\n}\nmetrics { bind = \"127.0.0.1:%d\" }", limit, mport), 1)
	}
	m := startMaster(t, "", withBound("v0"))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitBody(t, url, "v0")
	l := loadOn(t, port)
	l.waitWarm(t)
	for i := 1; i <= edits; i++ {
		idleConn(t, port)
		m.writeConfig(withBound("v" + strconv.Itoa(i)))
		m.signal(syscall.SIGHUP)
		// The next edit comes once this one was read: the master logs
		// each reload it starts (coalesced ones count once).
		l.waitServed(t, 200)
	}
	last := "v" + strconv.Itoa(edits)
	waitBody(t, url, last)
	l.waitServed(t, 1000)
	l.requireNoFailures(t, "through the reload storm")
	log := m.log.String()
	commits := drainingLine.FindAllStringSubmatch(log, -1)
	if len(commits) < limit+1 {
		t.Fatalf("%d generations retired, want more than %d for the bound to matter", len(commits), limit)
	}
	for _, c := range commits {
		if n, _ := strconv.Atoi(c[1]); n > limit {
			t.Errorf("a reload left %d generations draining, max_draining_generations is %d: %s", n, limit, c[0])
		}
	}
	if !strings.Contains(log, "reload waits for the oldest draining generation") ||
		!strings.Contains(log, "its generation is over max_draining_generations") {
		t.Errorf("the bound was never applied (%d retired generations)", len(commits))
	}
	// The idle connections of the generations closed first are counted.
	early := regexp.MustCompile(`hfork_drain_closed_early_total\{listener="web"\} (\d+)`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
		if mm := early.FindSubmatch(body); err == nil && mm != nil && string(mm[1]) != "0" {
			t.Logf("closed early: %s", mm[1])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hfork_drain_closed_early_total never counted a connection:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d edits, %d generations retired, %d reloads waited for room", edits, len(commits),
		strings.Count(log, "reload waits for the oldest draining generation"))
}
