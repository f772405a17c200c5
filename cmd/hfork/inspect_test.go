package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/engine"
)

// hforkCmd runs the command line in-process and returns its exit code and
// output.
func hforkCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := NewProgram(&out, &errOut).Run(append([]string{"hfork"}, args...))
	return code, out.String(), errOut.String()
}

// ppid is a process's parent, from /proc.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	// The command name is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, _ := strconv.Atoi(f[1])
	return n
}

func statusJSON(t *testing.T, m *master) engine.Status {
	t.Helper()
	code, out, errOut := hforkCmd("-s", "status", "--json", "-f", m.cfgPath)
	if code != 0 {
		t.Fatalf("hfork -s status --json: exit %d: %s", code, errOut)
	}
	var st engine.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	return st
}

// allReady: st shows workers, all of them ready.
func allReady(st engine.Status) bool {
	n := 0
	for _, l := range st.Listeners {
		for _, w := range l.Workers {
			if w.State != "ready" {
				return false
			}
			n++
		}
	}
	return n > 0
}

// TestStatus: -s status and --json against a running master, whose worker
// pids are its children in /proc; the last reload shows up with its plan.
func TestStatus(t *testing.T) {
	m, port := serveWeb(t, "")
	for range 5 {
		if _, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			t.Fatal(err)
		}
	}
	m.waitWorkers("web", 2)

	// Both processes exist now, but the second may not have reported ready.
	st := statusJSON(t, m)
	for deadline := time.Now().Add(10 * time.Second); !allReady(st) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		st = statusJSON(t, m)
	}
	if st.Version != engine.StatusVersion || st.Pid != m.pid() {
		t.Fatalf("status version %d pid %d, want %d and master pid %d", st.Version, st.Pid, engine.StatusVersion, m.pid())
	}
	if len(st.Listeners) != 1 || st.Listeners[0].Name != "web" || st.Listeners[0].Class != "async" ||
		st.Listeners[0].Binds[0] != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("listeners: %+v", st.Listeners)
	}
	l := st.Listeners[0]
	var pids []int
	for _, w := range l.Workers {
		pids = append(pids, w.Pid)
		if got := ppid(t, w.Pid); got != st.Pid {
			t.Errorf("worker %d: parent %d in /proc, want the master %d", w.Pid, got, st.Pid)
		}
		if w.State != "ready" || w.RSSBytes <= 0 || w.Gen != l.Gen {
			t.Errorf("worker %+v", w)
		}
	}
	if want := sorted(m.workerPids("web")); !slices.Equal(sorted(pids), want) {
		t.Errorf("status pids %v, /proc children %v", pids, want)
	}
	if st.LastReload != nil {
		t.Errorf("last reload before any: %+v", st.LastReload)
	}

	code, text, errOut := hforkCmd("-s", "status", "-f", m.cfgPath)
	if code != 0 {
		t.Fatalf("hfork -s status: exit %d: %s", code, errOut)
	}
	for _, want := range []string{`listener "web"`, "class async", strconv.Itoa(pids[0]), "last reload: none"} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}

	m.writeConfig(webConfig(port, "v2", ""))
	if _, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid"))); err != nil {
		t.Fatal(err)
	}
	st = statusJSON(t, m)
	r := st.LastReload
	if r == nil || r.Result != "ok" || !strings.Contains(r.Plan, `replace  listener "web"`) {
		t.Fatalf("last reload: %+v", r)
	}
	if st.Listeners[0].Gen == l.Gen {
		t.Errorf("gen %d after a replace, want a new one", st.Listeners[0].Gen)
	}
}
