package wire

import (
	"os"
	"slices"
	"strings"
)

// Environment names of socket activation and sd_notify. They are
// systemd's (sd_listen_fds(3), sd_notify(3)) and keep its meaning, so a
// program that supports socket activation can be an exec worker.
const (
	EnvListenFDs     = "LISTEN_FDS"
	EnvListenPID     = "LISTEN_PID"
	EnvListenFDNames = "LISTEN_FDNAMES"
	EnvNotifySocket  = "NOTIFY_SOCKET"
	EnvWatchdogUsec  = "WATCHDOG_USEC"
	EnvWatchdogPID   = "WATCHDOG_PID"
)

// hfork's own environment names.
const (
	// EnvWorker is "1" when hfork's own binary is started as a worker.
	EnvWorker = "HFORK_WORKER"
	// EnvControlFD names the fd of the control pipe's read end.
	EnvControlFD = "HFORK_CONTROL_FD"
	// EnvExec is "1" when hfork's binary starts as the exec shim: it sets
	// LISTEN_PID to its own pid and execs the program of EnvExecArgv (a
	// JSON array), so LISTEN_PID is the program's pid, as systemd promises.
	EnvExec     = "HFORK_EXEC"
	EnvExecArgv = "HFORK_EXEC_ARGV"
	// EnvPySourceFD names the fd an app listener's Python runner reads
	// its own program from; the runner closes it once read.
	EnvPySourceFD = "HFORK_PY_SOURCE_FD"
	// EnvUpgrade is "1" in a master started by a binary upgrade: it cannot
	// have LISTEN_PID, since the old master cannot know its pid before the
	// fork.
	EnvUpgrade = "HFORK_UPGRADE"
	// EnvUpgradeFD names the fd on which a new master tells the old one
	// that it is ready ("ready\n").
	EnvUpgradeFD = "HFORK_UPGRADE_FD"
)

// FirstFD is the first inherited socket: fds 3.., as systemd passes them.
const FirstFD = 3

// protocolEnv is every variable that describes one process's sockets,
// pipes or supervisor: true of the process that received it, false of any
// child it starts.
var protocolEnv = []string{
	EnvListenFDs, EnvListenPID, EnvListenFDNames, EnvNotifySocket, EnvWatchdogUsec, EnvWatchdogPID,
	EnvWorker, EnvControlFD, EnvExec, EnvExecArgv, EnvPySourceFD, EnvUpgrade, EnvUpgradeFD,
}

// Environ is environ (os.Environ() when nil) without the protocol
// variables: what a child inherits before its starter adds its own.
func Environ(environ []string) []string {
	if environ == nil {
		environ = os.Environ()
	}
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(protocolEnv, k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Unsetenv removes the protocol variables from this process's environment
// once it has read them, so nothing it starts later mistakes them for its
// own.
func Unsetenv() {
	for _, k := range protocolEnv {
		os.Unsetenv(k)
	}
}
