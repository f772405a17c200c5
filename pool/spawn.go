package pool

import (
	"os/exec"
	"runtime"
)

// Spawner starts child processes from one goroutine locked to one OS
// thread. Pdeathsig is delivered when the thread that forked the child
// exits, not the process (golang/go#27505); a locked thread that never
// unlocks lives as long as the master, so Pdeathsig means "the master died".
type Spawner struct {
	reqs chan spawnReq
	// hardenErr says why the spawner's thread could not be hardened (see
	// hardenThread); children are started all the same.
	hardenErr error
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

// NewSpawner starts the spawning goroutine.
func NewSpawner() *Spawner {
	s := &Spawner{reqs: make(chan spawnReq)}
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: this thread is the children's parent
		s.hardenErr = hardenThread()
		close(ready)
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	<-ready
	return s
}

// HardenErr says why workers start without no_new_privs or with
// capabilities in their bounding set, or nil.
func (s *Spawner) HardenErr() error { return s.hardenErr }

// Start starts cmd on the spawner's thread.
func (s *Spawner) Start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, reply: reply}
	return <-reply
}
