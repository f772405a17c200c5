package pool

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"github.com/hfork/hfork/pool/wire"
)

// ExecShim is the first step of an exec-class worker: hfork's own binary,
// started with the program's sockets and environment, sets LISTEN_PID to
// its own pid and execs the program in its place, so the program sees
// LISTEN_PID equal to its pid as systemd's protocol demands. It returns
// only on failure, with an exit code.
func ExecShim() int {
	// The parent-death signal the master set applies to the thread it
	// forked, and execve keeps only the calling thread's: the Go runtime
	// may run this code on another thread. Set it again on the thread that
	// will exec, then check the master did not die in between.
	master := os.Getppid()
	runtime.LockOSThread()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "hfork exec: prctl: %v\n", errno)
		return 126
	}
	if os.Getppid() != master {
		return 1
	}
	var argv []string
	if err := json.Unmarshal([]byte(os.Getenv(wire.EnvExecArgv)), &argv); err != nil || len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "hfork exec: no command")
		return 127
	}
	os.Unsetenv(wire.EnvExec)
	os.Unsetenv(wire.EnvExecArgv)
	os.Setenv(wire.EnvListenPID, strconv.Itoa(os.Getpid()))
	if os.Getenv(wire.EnvWatchdogUsec) != "" {
		os.Setenv(wire.EnvWatchdogPID, strconv.Itoa(os.Getpid()))
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "hfork exec: %v\n", err)
		return 127
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "hfork exec: %s: %v\n", path, err)
	return 126
}
