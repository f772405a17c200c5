package worker

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// listenFDsStart is the first inherited fd in the systemd protocol.
const listenFDsStart = 3

// inheritListeners adopts the sockets passed as fds firstFD.. under the
// systemd protocol: LISTEN_FDS says how many, LISTEN_FDNAMES names them
// (colon separated). LISTEN_PID is ignored: the master cannot know a
// child's pid before it forks it. Each fd is duplicated by net.FileListener
// and the original closed, so no inherited fd is left behind.
func inheritListeners(getenv func(string) string, firstFD int) ([]net.Listener, []string, error) {
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, nil, fmt.Errorf("inherit sockets: LISTEN_FDS=%q: want a positive count", getenv("LISTEN_FDS"))
	}
	var names []string
	if s := getenv("LISTEN_FDNAMES"); s != "" {
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

// readSpec reads the first line of the control pipe.
func readSpec(r *bufio.Reader) (Spec, error) {
	var spec Spec
	line, err := r.ReadBytes('\n')
	if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
		return spec, fmt.Errorf("read spec: %w", err)
	}
	if err := json.Unmarshal(line, &spec); err != nil {
		return spec, fmt.Errorf("read spec: %w", err)
	}
	return spec, nil
}

// readCommands applies each later line of the control pipe until it ends,
// then calls gone: the master holds the pipe's write end for as long as it
// lives, so EOF (or any read error) means it is gone.
func readCommands(r *bufio.Reader, apply func(Command, error), gone func(error)) {
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var c Command
			if jerr := json.Unmarshal(line, &c); jerr != nil {
				apply(c, fmt.Errorf("control command: %w", jerr))
			} else {
				apply(c, nil)
			}
		}
		if err != nil {
			gone(err)
			return
		}
	}
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
