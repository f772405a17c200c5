package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMasterAsPID1ReapsOrphans runs the master as PID 1 of a new pid
// namespace, as in a container. An exec worker leaves a background process
// behind each time it exits; those orphans are reparented to the master,
// which must reap them: no zombie may linger.
func TestMasterAsPID1ReapsOrphans(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare(1)")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "server.hcl")
	os.WriteFile(cfg, []byte(`
log { format = "json" }
reload { watch = false }
listener "orphans" {
  bind    = "127.0.0.1:0"
  class   = "exec"
  workers = 2
  ready   = "started"
  command = ["/bin/sh", "-c", "sleep 0.5 & sleep 0.2; exit 1"]
}
`), 0o644)
	cmd := exec.Command(unshare, "--pid", "--fork", "--kill-child", os.Args[0], "-f", cfg)
	cmd.Env = append(os.Environ(), envTestMaster+"=1")
	// A file, not a pipe: orphans inherit the output and Wait must not
	// wait for them.
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readLog := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	var master int
	defer func() {
		// unshare ignores TERM while it waits for its child: stop the
		// master itself, then unshare exits with it.
		if master != 0 {
			syscall.Kill(master, syscall.SIGTERM)
		} else {
			cmd.Process.Kill()
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("log:\n%s", readLog())
		}
	}()
	// The master is unshare's only child.
	deadline := time.Now().Add(10 * time.Second)
	for master == 0 && time.Now().Before(deadline) {
		for pid := range children(cmd.Process.Pid) {
			master = pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	if master == 0 {
		t.Fatal("no master under unshare")
	}
	if ns := nsPid(master); ns != 1 {
		t.Fatalf("master is pid %d in its namespace, want 1", ns)
	}
	// Let workers crash and leave orphans (four exits, so the first
	// orphans are reparented and gone too), then look for zombies that
	// stay zombies (a reaped one is gone within a tick).
	for strings.Count(readLog(), `"msg":"worker exited`) < 4 {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("fewer than 4 worker exits logged:\n%s", readLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stale := map[int]int{}
	for range 10 {
		for _, z := range zombieChildren(master) {
			stale[z]++
		}
		time.Sleep(100 * time.Millisecond)
	}
	for z, n := range stale {
		if n >= 5 {
			t.Errorf("zombie %d stayed unreaped for %d of 10 checks", z, n)
		}
	}
	if !strings.Contains(readLog(), "worker exited") {
		t.Errorf("no worker exits seen at all")
	}
}

// nsPid is pid's number inside its own pid namespace.
func nsPid(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

func zombieChildren(pid int) []int {
	var out []int
	for cpid, state := range procChildren(pid) {
		if state == "Z" {
			out = append(out, cpid)
		}
	}
	return out
}
