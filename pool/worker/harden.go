package worker

import (
	"fmt"
	"syscall"
)

// prSetDumpable is PR_SET_DUMPABLE.
const prSetDumpable = 4

// setNotDumpable makes this process undumpable: no core file, and no
// process of the worker's own uid may ptrace it or read its memory through
// /proc. A worker holds its listener's private keys, and every other
// process of that uid (the user's other workers, a compromised one) must
// not get them. It must run before the Spec is read, since the Spec
// carries the keys; execve would reset it, so it cannot be set by the
// master for the worker.
func setNotDumpable() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); errno != 0 {
		return fmt.Errorf("set not dumpable: %w", errno)
	}
	return nil
}
