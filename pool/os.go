package pool

import (
	"os/exec"
	"syscall"
	"time"
)

// OS is every effect the master has on the operating system's processes,
// behind a struct of functions so that tests can supply their own: a
// pool's logic (backoff, readiness, recycling, timeouts) then runs in
// milliseconds without a process. RealOS wires the real ones.
//
// Every function is called from the master's state-owning goroutine, and
// none may block it for long.
type OS struct {
	// Start starts a worker, cmd, and returns the child's pid. The caller
	// closes its copies of cmd's files afterwards, whatever Start returns.
	Start func(cmd *exec.Cmd) (pid int, err error)
	// StartMaster starts the new master of a binary upgrade. It is not a
	// worker: it must not die with this master (no Pdeathsig thread) nor
	// take what the workers' spawner withholds from its children.
	StartMaster func(cmd *exec.Cmd) (pid int, err error)
	// Signal sends sig to a child Start returned and Release has not
	// forgotten; never to another process that took its pid.
	Signal func(pid int, sig syscall.Signal) error
	// Release forgets a child once it was reaped.
	Release func(pid int)
	// Reap collects every child that has exited, without waiting.
	Reap func() []ExitEvent
	// Now is the clock.
	Now func() time.Time
	// HardenErr says why workers start without no_new_privs or with
	// capabilities left (nil when they are hardened); a fake may leave
	// it nil.
	HardenErr func() error
}
