package pool

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// statusField is one field of a /proc status file, its fields joined.
func statusField(status []byte, name string) string {
	for line := range strings.SplitSeq(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// TestSpawnerHardensChildren: a child started by the spawner has
// no_new_privs and, when the master is root, an empty bounding set; the
// master's main thread keeps its own.
func TestSpawnerHardensChildren(t *testing.T) {
	nnp0, bnd0 := hardenedThreads(t)
	s := NewSpawner()
	if err := s.HardenErr(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("/bin/cat", "/proc/self/status")
	cmd.Stdout = &out
	if err := s.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := statusField(out.Bytes(), "NoNewPrivs"); got != "1" {
		t.Errorf("child NoNewPrivs %q, want 1", got)
	}
	if os.Geteuid() == 0 {
		if got := statusField(out.Bytes(), "CapBnd"); got != "0000000000000000" {
			t.Errorf("child CapBnd %q, want empty", got)
		}
	}
	// Only the spawner's own thread is hardened (it may be the main
	// thread: a locked goroutine can land on any).
	nnp, bnd := hardenedThreads(t)
	if nnp != nnp0+1 {
		t.Errorf("%d threads have no_new_privs, want %d: only the spawner's", nnp, nnp0+1)
	}
	if os.Geteuid() == 0 && bnd != bnd0+1 {
		t.Errorf("%d threads have an empty bounding set, want %d: only the spawner's", bnd, bnd0+1)
	}
}

// hardenedThreads counts this process's threads with no_new_privs and
// with an empty bounding set.
func hardenedThreads(t *testing.T) (nnp, emptyBnd int) {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads %v: %v", tasks, err)
	}
	for _, task := range tasks {
		st, err := os.ReadFile(task)
		if err != nil {
			continue // a thread that just exited
		}
		if statusField(st, "NoNewPrivs") == "1" {
			nnp++
		}
		if statusField(st, "CapBnd") == "0000000000000000" {
			emptyBnd++
		}
	}
	return nnp, emptyBnd
}

// TestProtectMaster runs ProtectMaster in a child test process (so this
// one stays dumpable) and reads the flag back with PR_GET_DUMPABLE.
func TestProtectMaster(t *testing.T) {
	if os.Getenv("HFORK_TEST_PROTECT") == "1" {
		if err := ProtectMaster(); err != nil {
			t.Fatal(err)
		}
		d, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, 3, 0, 0) // PR_GET_DUMPABLE
		if errno != 0 {
			t.Fatal(errno)
		}
		t.Logf("dumpable=%d", d)
		return
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestProtectMaster$", "-test.v")
	cmd.Env = append(os.Environ(), "HFORK_TEST_PROTECT=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("dumpable=0")) {
		t.Errorf("want the process not dumpable:\n%s", out)
	}
}
