package engine

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeMaster starts a live process whose argv[0] says hfork, as a
// master's does, and ends it when the test ends.
func fakeMaster(t *testing.T) int {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	cmd := &exec.Cmd{Path: sleep, Args: []string{"hfork-test-master", "60"}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

func writePid(t *testing.T, path string, pid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFindMaster walks an upgrade's pidfiles: before, while the new
// master starts (only .oldbin), after it is ready (both), and after the
// old one left.
func TestFindMaster(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hfork.pid")
	if _, err := FindMaster(path); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no pidfile: err = %v, want ErrNotRunning", err)
	}
	old, new := fakeMaster(t), fakeMaster(t)

	writePid(t, path, old)
	if got, err := FindMaster(path); err != nil || got != (Running{Pid: old}) {
		t.Errorf("before the upgrade: %+v, %v; want pid %d", got, err, old)
	}

	if err := os.Rename(path, path+OldbinSuffix); err != nil {
		t.Fatal(err)
	}
	if got, err := FindMaster(path); err != nil || got != (Running{Pid: old, Upgrading: true}) {
		t.Errorf("new master starting: %+v, %v; want the old master %d, upgrading", got, err, old)
	}

	writePid(t, path, new)
	if got, err := FindMaster(path); err != nil || got != (Running{Pid: new, Draining: old}) {
		t.Errorf("new master ready: %+v, %v; want %d in charge, %d draining", got, err, new, old)
	}

	if err := os.Remove(path + OldbinSuffix); err != nil {
		t.Fatal(err)
	}
	if got, err := FindMaster(path); err != nil || got != (Running{Pid: new}) {
		t.Errorf("after the upgrade: %+v, %v; want pid %d", got, err, new)
	}
}

// TestFindMasterStale: a pidfile naming a dead process, or one that is not
// hfork, is not a master, and a stale .oldbin does not hide that.
func TestFindMasterStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hfork.pid")
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true")
	}
	writePid(t, path, cmd.Process.Pid) // reaped: gone
	writePid(t, path+OldbinSuffix, os.Getpid())
	if got, err := FindMaster(path); !errors.Is(err, ErrNotRunning) {
		t.Errorf("stale pidfiles: %+v, %v; want ErrNotRunning", got, err)
	}
}

// TestWritePidfile: the file holds the pid and a newline, mode 0644, and
// no temporary file is left.
func TestWritePidfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hfork.pid")
	if err := WritePidfile(path, 1234); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "1234\n" {
		t.Fatalf("pidfile = %q, %v", b, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
