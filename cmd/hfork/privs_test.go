package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrivilegeDrop: the master binds as root, its workers run as the
// configured user and group with no supplementary groups, and the unix
// socket file gets its mode and group. Checked from /proc and the disk.
func TestPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	grp, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skip("no group nogroup")
	}
	// The workers re-execute the binary as nobody: it must be reachable.
	dir, err := os.MkdirTemp("", "hfork-privs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "hfork")
	buildHfork(t, bin, "")
	port := mustFreePort(t)
	sock := filepath.Join(dir, "web.sock")
	m := startMaster(t, bin, fmt.Sprintf(`
user  = "nobody"
group = "nogroup"
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "web" {
  bind         = ["127.0.0.1:%d", "unix:%s"]
  workers      = 2
  socket_mode  = "0660"
  socket_group = "nogroup"
  route "/" {
    respond { body = "dropped" }
  }
}
`, port, sock))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "dropped")
	for _, pid := range m.waitWorkers("web", 2) {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		fields := map[string]string{}
		for _, line := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		wantUID := strings.Repeat(nobody.Uid+" ", 4)
		wantGID := strings.Repeat(grp.Gid+" ", 4)
		if fields["Uid"] != strings.TrimSpace(wantUID) || fields["Gid"] != strings.TrimSpace(wantGID) {
			t.Errorf("worker %d: Uid %q Gid %q, want all %s / %s", pid, fields["Uid"], fields["Gid"], nobody.Uid, grp.Gid)
		}
		if fields["Groups"] != "" {
			t.Errorf("worker %d keeps supplementary groups %q", pid, fields["Groups"])
		}
	}
	master, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.pid()))
	if !strings.Contains(string(master), "Uid:\t0\t0\t0\t0") {
		t.Errorf("master is not root any more")
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, _ := exec.Command("stat", "-c", "%G", sock).Output(); strings.TrimSpace(string(out)) == "nogroup" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("socket group %q, want nogroup", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
