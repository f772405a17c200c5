package pool

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/pyrunner"
	"github.com/hfork/hfork/pool/wire"
)

// TestPythonCmd: an app listener's worker runs its python, found on the
// listener's PATH as hfork -t looks for it, with the runner on a pipe at
// HFORK_PY_SOURCE_FD, and the scrubbed environment plus the listener's env
// and pass_env: no HFORK_WORKER (it is not hfork's binary), no Go runtime
// settings, no secret of the master's.
func TestPythonCmd(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "venv", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "python3"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("GOGC", "200")
	t.Setenv("APP_TOKEN", "t0ken")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
	l := hclconfig.Listener{Name: "py", Class: hclconfig.ClassGevent, App: "myapp:app", Python: "python3", Dir: dir,
		PassEnv: []string{"APP_TOKEN"}, Env: map[string]string{"PATH": bin, "MODE": "prod"}}
	p := &Pool{cfg: Config{Listener: l}}

	sock, ctl := os.Stdin, os.Stdin // stand-ins: pythonCmd only counts them
	env := append(workerEnv(l), wire.EnvWorker+"=1", wire.EnvControlFD+"=4")
	cmd := &exec.Cmd{Path: selfExe, ExtraFiles: []*os.File{sock, ctl}, Env: env}
	done, err := p.pythonCmd(cmd, env)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if want := filepath.Join(bin, "python3"); cmd.Path != want {
		t.Errorf("path %q, want %q (the listener's PATH)", cmd.Path, want)
	}
	if !slices.Equal(cmd.Args, []string{"python3", "/dev/fd/5"}) || cmd.Dir != dir {
		t.Errorf("args %q in %q", cmd.Args, cmd.Dir)
	}
	for _, want := range []string{"PATH=" + bin, "MODE=prod", "APP_TOKEN=t0ken", wire.EnvControlFD + "=4", wire.EnvPySourceFD + "=5"} {
		if !slices.Contains(cmd.Env, want) {
			t.Errorf("env lacks %s: %q", want, cmd.Env)
		}
	}
	for _, bad := range []string{wire.EnvWorker + "=1", "GOGC=200", "AWS_SECRET_ACCESS_KEY=s3cret", "PATH=/usr/bin:/bin"} {
		if slices.Contains(cmd.Env, bad) {
			t.Errorf("env has %s: %q", bad, cmd.Env)
		}
	}
	if len(cmd.ExtraFiles) != 3 {
		t.Fatalf("extra files %d, want the runner's pipe as the third", len(cmd.ExtraFiles))
	}
	src, err := io.ReadAll(cmd.ExtraFiles[2])
	if err != nil || !bytes.Equal(src, pyrunner.Source()) {
		t.Errorf("the pipe carries %d bytes (%v), want the runner's %d", len(src), err, len(pyrunner.Source()))
	}

	l.Python = "hfork-no-such-python"
	p.cfg.Listener = l
	if _, err := p.pythonCmd(&exec.Cmd{}, env); err == nil {
		t.Errorf("a python not on the listener's PATH was found")
	}
}
