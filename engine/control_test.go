package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// envDial makes the test binary a client of the control socket at its
// value: it asks for a reload and prints the answer.
const envDial = "HFORK_TEST_CONTROL_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(envDial); path != "" {
		out, err := ControlReload(path)
		fmt.Printf("out=%q err=%v\n", out, err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestControlAnswersOnlyItsOwner: only the owner may open the socket file,
// and even with
// its mode loosened the master refuses a peer of another uid (SO_PEERCRED).
func TestControlAnswersOnlyItsOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hfork.pid.sock")
	c, err := listenControl(path, func(msg any) {
		msg.(reloadAsk).reply <- ReloadResult{Plan: "  keep     listener \"web\""}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("control socket mode %v: group or others may connect", fi.Mode().Perm())
	}
	out, err := ControlReload(path)
	if err != nil || !strings.Contains(out, "keep") {
		t.Fatalf("owner: %q, %v", out, err)
	}

	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	// loosen the file and the temp dirs above it, as a careless operator
	// might
	os.Chmod(path, 0o666)
	os.Chmod(filepath.Dir(path), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(path)), 0o755)
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), envDial+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), "refused") || strings.Contains(string(got), "keep") {
		t.Errorf("a client of another uid got: %s", got)
	}
}
