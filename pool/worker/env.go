package worker

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/hfork/hfork/pool/wire"
)

// inheritListeners adopts the sockets passed as fds firstFD.. under the
// systemd protocol: LISTEN_FDS says how many, LISTEN_FDNAMES names them
// (colon separated). LISTEN_PID is ignored: the master cannot know a
// child's pid before it forks it. Each fd is duplicated by net.FileListener
// and the original closed, so no inherited fd is left behind.
func inheritListeners(getenv func(string) string, firstFD int) ([]net.Listener, []string, error) {
	n, err := strconv.Atoi(getenv(wire.EnvListenFDs))
	if err != nil || n <= 0 {
		return nil, nil, fmt.Errorf("inherit sockets: LISTEN_FDS=%q: want a positive count", getenv(wire.EnvListenFDs))
	}
	var names []string
	if s := getenv(wire.EnvListenFDNames); s != "" {
		names = strings.Split(s, ":")
	}
	lns := make([]net.Listener, 0, n)
	outNames := make([]string, 0, n)
	for i := range n {
		name := "unknown" // systemd's name for an unnamed fd
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		fd := firstFD + i
		f := os.NewFile(uintptr(fd), name)
		if f == nil {
			err = fmt.Errorf("inherit socket %s (fd %d): invalid fd", name, fd)
		} else {
			var l net.Listener
			l, err = net.FileListener(f)
			f.Close()
			if err != nil {
				err = fmt.Errorf("inherit socket %s (fd %d): %w", name, fd, err)
			} else {
				lns = append(lns, l)
				outNames = append(outNames, name)
			}
		}
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, nil, err
		}
	}
	return lns, outNames, nil
}

// procsPerWorker is how many threads a worker lets run Go code at once.
// The workers of a listener run side by side on the same machine, so each
// takes its share of the cores rather than all of them: with every worker
// sized for the whole machine, the runtime schedules workers-fold more
// threads than there are cores and they preempt each other mid-request.
// cpus is the runtime's own count, which already honours a cgroup CPU
// limit.
func procsPerWorker(cpus, workers int) int {
	return max(1, cpus/max(workers, 1))
}

// setMaxProcs applies procsPerWorker unless the operator chose GOMAXPROCS,
// and returns the value in force and whether it set it.
func setMaxProcs(getenv func(string) string, workers int) (int, bool) {
	if getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0), false
	}
	n := procsPerWorker(runtime.GOMAXPROCS(0), workers)
	runtime.GOMAXPROCS(n)
	return n, true
}
