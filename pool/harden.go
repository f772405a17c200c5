package pool

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// prctl options not in package syscall.
const (
	prSetNoNewPrivs = 38 // PR_SET_NO_NEW_PRIVS
	prCapBSetDrop   = 24 // PR_CAPBSET_DROP
)

// hardenThread takes from the calling thread what no worker may hold, so
// every child forked from it starts without it: no_new_privs (no setuid
// binary or file capability can raise a worker's privileges) and, when
// the thread may drop them, every capability in the bounding set (a worker
// running as root gets no capabilities from exec). Both are per-thread and
// inherited across fork and exec, which is why they are set once on the
// spawner's locked thread rather than in each child: a Go child cannot run
// code between fork and exec, and after the switch to the worker's user it
// would no longer hold CAP_SETPCAP to drop the bounding set. The master's
// other threads keep their capabilities (it binds sockets and switches
// users on reload).
//
// Dumpability cannot be set here: execve resets it. Built-in workers set
// it themselves (worker.Main) before they read anything secret.
func hardenThread() error {
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("harden spawner: no_new_privs: %w", errno)
	}
	if os.Geteuid() != 0 {
		return nil // without CAP_SETPCAP the bounding set cannot shrink
	}
	last := lastCap()
	for c := 0; c <= last; c++ {
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prCapBSetDrop, uintptr(c), 0, 0, 0, 0); errno != 0 && errno != syscall.EINVAL {
			return fmt.Errorf("harden spawner: drop capability %d from the bounding set: %w", c, errno)
		}
	}
	return nil
}

// lastCap is the highest capability the kernel knows; 63 when it does not
// say (PR_CAPBSET_DROP answers EINVAL for the ones it does not know).
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 63
	}
	return n
}

// prSetDumpable is PR_SET_DUMPABLE.
const prSetDumpable = 4

// ProtectMaster makes the master undumpable: it holds every listener's
// private keys, and a master that shares its uid with its workers (no
// user switch) must not be ptraced or read by one of them. Root can
// still debug it.
func ProtectMaster() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); errno != 0 {
		return fmt.Errorf("set the master not dumpable: %w", errno)
	}
	return nil
}
