package pool

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/pyrunner"
	"github.com/hfork/hfork/pool/wire"
)

// pythonCmd turns the command spawn built for a built-in worker into one
// for an app listener's Python worker: the same sockets, control pipe and
// Spec, but the listener's interpreter runs hfork's runner, read from a
// pipe, in the listener's dir with the environment workerEnv gave it. The
// returned func closes the master's copy of the pipe's read end once the
// child started (or not).
func (p *Pool) pythonCmd(cmd *exec.Cmd, env []string) (func(), error) {
	l := p.cfg.Listener
	python := l.Python
	if python == "" {
		python = hclconfig.DefaultPython
	}
	path, err := lookPython(python, l.Dir, l.Env["PATH"])
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
	fd := wire.FirstFD + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	cmd.Path = path
	// argv[0] stays the interpreter: CPython finds its prefix (and a
	// virtualenv's site-packages) from it.
	cmd.Args = []string{python, "/dev/fd/" + strconv.Itoa(fd)}
	cmd.Dir = l.Dir
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, wire.EnvWorker+"=") {
			continue // the runner is not hfork's binary
		}
		out = append(out, kv)
	}
	cmd.Env = append(out, wire.EnvPySourceFD+"="+strconv.Itoa(fd))
	return func() { r.Close() }, nil
}

// lookPython finds the interpreter as hfork -t checks it (hclconfig's
// access check): a name with a slash relative to dir, a bare name on path,
// the listener's PATH (else the master's, which workers get).
func lookPython(python, dir, path string) (string, error) {
	if strings.Contains(python, "/") {
		if !filepath.IsAbs(python) {
			python = filepath.Join(dir, python)
		}
		return exec.LookPath(python)
	}
	if path == "" {
		path = os.Getenv("PATH")
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		if full, err := exec.LookPath(filepath.Join(d, python)); err == nil {
			return full, nil
		}
	}
	return "", fmt.Errorf("not found in PATH (%s): %w", path, fs.ErrNotExist)
}
