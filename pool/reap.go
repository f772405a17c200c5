package pool

import (
	"strconv"
	"syscall"
)

// ExitEvent says a child process was reaped.
type ExitEvent struct {
	Pid    int
	Status syscall.WaitStatus
}

// Reap collects every child that has exited, without blocking, and returns
// their exits. The master calls it on SIGCHLD and on a timer: it is the only
// place that waits for children, so it also reaps orphans reparented to a
// master running as PID 1.
func Reap() []ExitEvent {
	var out []ExitEvent
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return out
		}
		out = append(out, ExitEvent{Pid: pid, Status: ws})
	}
}

// DescribeStatus renders an exit status for a log line.
func DescribeStatus(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "killed by signal " + ws.Signal().String()
	}
	return "status " + strconv.Itoa(int(ws))
}
