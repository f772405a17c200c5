package pool

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/hfork/hfork/pool/pyrunner"
	"github.com/hfork/hfork/pool/worker"
)

// EnvPySourceFD names the fd the Python runner's program arrives on; the
// runner closes it once read.
const EnvPySourceFD = "HFORK_PY_SOURCE_FD"

// pythonCmd turns the command spawn built for a built-in worker into one
// for an app listener's Python worker: the same sockets, control pipe and
// Spec, but the listener's interpreter runs hfork's runner, read from a
// pipe, in the listener's dir with its env. The returned func closes the
// master's copy of the pipe's read end once the child started (or not).
func (p *Pool) pythonCmd(cmd *exec.Cmd, env []string) (func(), error) {
	l := p.cfg.Listener
	python := l.Python
	if python == "" {
		python = "python3"
	}
	path, err := exec.LookPath(python)
	if err != nil {
		return nil, fmt.Errorf("python %q: %w", python, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	src := pyrunner.Source()
	// Written from a goroutine: the program may be larger than the pipe's
	// buffer, and the interpreter reads it only once it runs.
	go func() {
		w.Write(src)
		w.Close()
	}()
	fd := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	cmd.Path = path
	// argv[0] stays the interpreter: CPython finds its prefix (and a
	// virtualenv's site-packages) from it.
	cmd.Args = []string{python, "/dev/fd/" + strconv.Itoa(fd)}
	cmd.Dir = l.Dir
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, worker.EnvWorker+"=") {
			continue // the runner is not hfork's binary
		}
		out = append(out, kv)
	}
	out = append(out, EnvPySourceFD+"="+strconv.Itoa(fd))
	for k, v := range l.Env {
		out = append(out, k+"="+v)
	}
	cmd.Env = out
	return func() { r.Close() }, nil
}
