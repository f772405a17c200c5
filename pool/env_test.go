package pool

import (
	"os/user"
	"slices"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestWorkerEnv(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("LC_TIME", "C")
	t.Setenv("HOME", "/home/master")
	t.Setenv("GOGC", "200")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
	t.Setenv("APP_TOKEN", "t0ken")
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")

	builtin := workerEnv(hclconfig.Listener{Class: hclconfig.ClassAsync})
	for _, want := range []string{"PATH=/usr/bin:/bin", "LC_TIME=C", "HOME=/home/master", "GOGC=200"} {
		if !slices.Contains(builtin, want) {
			t.Errorf("built-in worker env lacks %s: %q", want, builtin)
		}
	}
	prog := workerEnv(hclconfig.Listener{Class: hclconfig.ClassExec, PassEnv: []string{"APP_TOKEN"},
		Env: map[string]string{"PATH": "/opt/app/bin", "MODE": "prod"}})
	for _, want := range []string{"PATH=/opt/app/bin", "MODE=prod", "APP_TOKEN=t0ken", "LC_TIME=C"} {
		if !slices.Contains(prog, want) {
			t.Errorf("exec env lacks %s: %q", want, prog)
		}
	}
	for name, env := range map[string][]string{"built-in": builtin, "exec": prog} {
		for _, kv := range env {
			switch kv {
			case "AWS_SECRET_ACCESS_KEY=s3cret", "NOTIFY_SOCKET=/run/systemd/notify":
				t.Errorf("%s env has %s", name, kv)
			}
		}
	}
	if slices.Contains(prog, "GOGC=200") || slices.Contains(builtin, "APP_TOKEN=t0ken") {
		t.Errorf("Go runtime settings reach exec programs or pass_env reaches built-in workers")
	}
	if slices.Contains(prog, "PATH=/usr/bin:/bin") {
		t.Errorf("env did not replace the master's PATH: %q", prog)
	}

	all := workerEnv(hclconfig.Listener{Class: hclconfig.ClassExec, InheritEnv: true})
	if !slices.Contains(all, "AWS_SECRET_ACCESS_KEY=s3cret") || slices.Contains(all, "NOTIFY_SOCKET=/run/systemd/notify") {
		t.Errorf("inherit_env: want the master's environment without its notify socket: %q", all)
	}

	if u, err := user.Lookup("nobody"); err == nil {
		env := workerEnv(hclconfig.Listener{Class: hclconfig.ClassExec, User: "nobody"})
		if !slices.Contains(env, "HOME="+u.HomeDir) || !slices.Contains(env, "USER=nobody") || slices.Contains(env, "HOME=/home/master") {
			t.Errorf("a worker run as nobody: want nobody's HOME and USER: %q", env)
		}
	}
}
