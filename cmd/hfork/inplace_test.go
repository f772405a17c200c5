package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInPlaceWriteAppliedWhole: a config rewritten in place in two writes,
// the first of which is a valid config without listener b, is applied
// once whole: b is neither stopped nor restarted. The second write goes in
// once the master's watcher has read the first part (its debug log says
// so) and waits to read the file again.
func TestInPlaceWriteAppliedWhole(t *testing.T) {
	pa, pb := mustFreePort(t), mustFreePort(t)
	head := `pidfile = "hfork.pid"
log {
  format = "text"
  level  = "debug"
}
reload {
  watch    = true
  debounce = "1s"
}
`
	listener := func(name string, port int, body string) string {
		return fmt.Sprintf(`listener %q {
  bind    = "127.0.0.1:%d"
  workers = 1
  route "/" {
    respond { body = %q }
  }
}
`, name, port, body)
	}
	m := startMaster(t, "", head+listener("a", pa, "a1")+listener("b", pb, "b1"))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", pa), "a1")
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", pb), "b1")
	before := m.waitWorkers("b", 1)

	f, err := os.OpenFile(m.cfgPath, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(head + listener("a", pa, "a2")); err != nil {
		t.Fatal(err)
	}
	m.waitLog("reading it again before the reload", 1, 15*time.Second)
	if _, err := f.WriteString(listener("b", pb, "b1")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", pa), "a2")
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", pb), "b1")
	m.waitLog("reload complete", 1, 15*time.Second)
	if after := m.waitWorkers("b", 1); !slices.Equal(after, before) {
		t.Errorf("listener b's worker changed: %v, then %v", before, after)
	}
	log := m.log.String()
	if strings.Contains(log, "listener=b action=stop") || strings.Contains(log, "listener=b action=start") {
		t.Errorf("the first half was applied: listener b stopped or started")
	}
	if n := strings.Count(log, `msg=reloading`); n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
	if !strings.Contains(log, `msg="reload plan" listener=b action=keep`) {
		t.Errorf("the reload did not keep listener b")
	}
}
