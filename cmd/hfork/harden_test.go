package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// ptraceProbe attaches to the pid in argv[1] with PTRACE_ATTACH and says
// "attached" (then detaches) or "denied: <errno>".
const ptraceProbe = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid = int(sys.argv[1])
if libc.ptrace(16, pid, None, None) != 0:
    print("denied:", os.strerror(ctypes.get_errno()))
    sys.exit(0)
os.waitpid(pid, 0x40000000)
libc.ptrace(17, pid, None, None)
print("attached")
`

// TestHardenedWorkers: a built-in worker and an exec'd program, both run
// as nobody by a root master, have no_new_privs and an empty capability
// bounding set, and see none of the master's environment but the
// allowlist, their env and their pass_env. The built-in worker, which may
// hold private keys, cannot be ptraced by another process of its own uid;
// the exec'd program (dumpable again after its exec) can, which shows the
// probe can succeed.
func TestHardenedWorkers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	python, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3 for the ptrace probe")
	}
	dir, err := os.MkdirTemp("", "hfork-harden-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "hfork")
	buildHfork(t, bin, "")
	t.Setenv("HFORK_TEST_SECRET", "s3cret")
	t.Setenv("HFORK_TEST_PASSED", "yes")
	web, prog := mustFreePort(t), mustFreePort(t)
	m := startMaster(t, bin, fmt.Sprintf(`
user    = "nobody"
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "web" {
  bind    = "127.0.0.1:%d"
  workers = 1
  route "/" {
    respond { body = "hardened" }
  }
}
listener "prog" {
  bind     = "127.0.0.1:%d"
  class    = "exec"
  workers  = 1
  ready    = "started"
  command  = ["/bin/sleep", "600"]
  env      = { GREETING = "hi" }
  pass_env = ["HFORK_TEST_PASSED"]
  dir      = %q
}
`, web, prog, dir))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", web), "hardened")
	workerPid := m.waitWorkers("web", 1)[0]
	progPid := m.waitWorkers("prog", 1)[0]

	for name, pid := range map[string]int{"web": workerPid, "prog": progPid} {
		st := statusFields(t, pid)
		if st["Uid"] != strings.Repeat(nobody.Uid+" ", 3)+nobody.Uid {
			t.Errorf("%s worker %d: Uid %q, want nobody", name, pid, st["Uid"])
		}
		if st["NoNewPrivs"] != "1" {
			t.Errorf("%s worker %d: NoNewPrivs %q, want 1", name, pid, st["NoNewPrivs"])
		}
		if st["CapBnd"] != "0000000000000000" {
			t.Errorf("%s worker %d: CapBnd %q, want empty", name, pid, st["CapBnd"])
		}
	}

	webEnv, progEnv := environ(t, workerPid), environ(t, progPid)
	for name, env := range map[string]map[string]string{"web": webEnv, "prog": progEnv} {
		if _, ok := env["HFORK_TEST_SECRET"]; ok {
			t.Errorf("%s worker has the master's HFORK_TEST_SECRET", name)
		}
		if env["PATH"] != os.Getenv("PATH") {
			t.Errorf("%s worker: PATH %q, want the master's", name, env["PATH"])
		}
		if env["HOME"] != nobody.HomeDir || env["USER"] != "nobody" {
			t.Errorf("%s worker: HOME %q USER %q, want nobody's", name, env["HOME"], env["USER"])
		}
	}
	if progEnv["HFORK_TEST_PASSED"] != "yes" || progEnv["GREETING"] != "hi" {
		t.Errorf("exec worker: pass_env and env not applied: %v", progEnv)
	}
	if _, ok := webEnv["HFORK_TEST_PASSED"]; ok {
		t.Errorf("built-in worker got a variable only the exec listener passes")
	}

	probe := func(pid int) string {
		t.Helper()
		cmd := exec.Command(python, "-c", ptraceProbe, strconv.Itoa(pid))
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ptrace probe: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := probe(workerPid); !strings.HasPrefix(got, "denied:") {
		t.Errorf("ptrace as nobody on the built-in worker: %q, want denied", got)
	}
	if got := probe(progPid); got != "attached" {
		t.Errorf("ptrace as nobody on the exec'd program: %q, want attached (the probe must be able to succeed)", got)
	}
	// The worker still serves after the probe.
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", web), "hardened")
}

// statusFields reads /proc/PID/status as name → value, values' fields
// joined by one space.
func statusFields(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

// environ reads /proc/PID/environ.
func environ(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}
