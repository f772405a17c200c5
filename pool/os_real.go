package pool

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// RealOS is the OS of a running master: children start on the spawner's
// locked thread (so Pdeathsig means "the master died"), are signalled
// through their pidfd (os.Process), and are reaped with wait4.
func RealOS() *OS {
	spawner := NewSpawner()
	var mu sync.Mutex
	procs := map[int]*os.Process{}
	return &OS{
		Start: func(cmd *exec.Cmd) (int, error) {
			if err := spawner.Start(cmd); err != nil {
				return 0, err
			}
			mu.Lock()
			procs[cmd.Process.Pid] = cmd.Process
			mu.Unlock()
			return cmd.Process.Pid, nil
		},
		StartMaster: func(cmd *exec.Cmd) (int, error) {
			if err := cmd.Start(); err != nil {
				return 0, err
			}
			mu.Lock()
			procs[cmd.Process.Pid] = cmd.Process
			mu.Unlock()
			return cmd.Process.Pid, nil
		},
		Signal: func(pid int, sig syscall.Signal) error {
			mu.Lock()
			p := procs[pid]
			mu.Unlock()
			if p == nil {
				return fmt.Errorf("signal %d: %w", pid, os.ErrProcessDone)
			}
			return p.Signal(sig)
		},
		Release: func(pid int) {
			mu.Lock()
			p := procs[pid]
			delete(procs, pid)
			mu.Unlock()
			if p != nil {
				p.Release()
			}
		},
		Reap:      Reap,
		Now:       time.Now,
		HardenErr: spawner.HardenErr,
	}
}
