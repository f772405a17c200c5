package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The shipped files in etc/ are checked by the tools that will read them:
// systemd-analyze verify (Debian's systemd package) and logrotate (its
// own package), both in .ci/run's install list. A test skips, saying
// which tool is missing, only where it is absent.

const (
	shippedBinary = "/usr/local/bin/hfork"
	shippedConfig = "/etc/hfork/server.hcl"
	shippedLogs   = "/var/log/hfork"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian: apt-get install %s); the etc/ file is not checked", name, map[string]string{"systemd-analyze": "systemd", "logrotate": "logrotate"}[name])
	}
	return path
}

// systemdVersion is the version systemd-analyze reports ("systemd 252 (...)").
func systemdVersion(t *testing.T, tool string) int {
	out, err := exec.Command(tool, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", tool, err)
	}
	m := regexp.MustCompile(`^systemd (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s --version: cannot read %q", tool, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestSystemdUnits: each unit passes systemd-analyze verify without a
// word (verify exits 0 on an unknown key or type, so its output is the
// verdict), on the systemd versions it is for: hfork.service on 252 and
// later, hfork-notify-reload.service on 253 and later.
func TestSystemdUnits(t *testing.T) {
	tool := needTool(t, "systemd-analyze")
	version := systemdVersion(t, tool)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		min  int
	}{{"hfork.service", 252}, {"hfork-notify-reload.service", 253}} {
		t.Run(c.file, func(t *testing.T) {
			if version < c.min {
				t.Skipf("systemd %d here; %s needs %d or later", version, c.file, c.min)
			}
			src, err := os.ReadFile(filepath.Join("..", "..", "etc", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(src), "RuntimeDirectory=hfork") {
				t.Errorf("%s does not make /run/hfork, where etc/server.hcl puts its pidfile", c.file)
			}
			// verify checks that ExecStart's program exists: point it at
			// this binary.
			unit := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(src), shippedBinary, exe)), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tool, "verify", unit)
			cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
			out, err := cmd.CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", c.file, err, out)
			}
		})
	}
}

// logrotateConfig is etc/logrotate.d/hfork pointed at dir's logs, config
// and this binary as hfork.
func logrotateConfig(t *testing.T, dir, config string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "etc", "logrotate.d", "hfork"))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		shippedLogs, dir,
		shippedConfig, config,
		shippedBinary, "env "+envTestMaster+"=1 "+exe,
	).Replace(string(src))
	path := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLogrotate: the shipped file parses (logrotate -d), a forced rotation
// makes a running master reopen its log, and with no master to signal the
// rotation fails where the operator sees it instead of passing silently.
func TestLogrotate(t *testing.T) {
	tool := needTool(t, "logrotate")
	if out, err := exec.Command(tool, "-d", "-s", filepath.Join(t.TempDir(), "state"), filepath.Join("..", "..", "etc", "logrotate.d", "hfork")).CombinedOutput(); err != nil || strings.Contains(string(out), "error") {
		t.Fatalf("logrotate -d etc/logrotate.d/hfork: %v\n%s", err, out)
	}

	port := mustFreePort(t)
	m := startMaster(t, "", fmt.Sprintf(`pidfile = "hfork.pid"
log {
  format = "text"
  file   = "hfork.log"
}
reload { watch = false }
listener "web" {
  bind    = "127.0.0.1:%d"
  workers = 1
  route "/" {
    respond { body = "ok" }
  }
}
`, port))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "ok")
	conf := logrotateConfig(t, m.dir, m.cfgPath)
	state := filepath.Join(m.dir, "logrotate.state")

	out, err := exec.Command(tool, "-f", "-s", state, conf).CombinedOutput()
	if err != nil {
		t.Fatalf("logrotate with a running master: %v\n%s", err, out)
	}
	rotated := filepath.Join(m.dir, "hfork.log.1")
	if _, err := os.Stat(rotated); err != nil {
		t.Fatalf("no rotated log: %v\n%s", err, out)
	}
	// The master reopens on USR1 and logs that it did, into the new file.
	waitFile(t, filepath.Join(m.dir, "hfork.log"))

	m.stop(syscall.SIGQUIT)
	if err := os.WriteFile(filepath.Join(m.dir, "hfork.log"), []byte("a line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(tool, "-f", "-s", state, conf).CombinedOutput()
	if err == nil {
		t.Errorf("logrotate with no master running exited 0:\n%s", out)
	}
	if !strings.Contains(string(out), "hfork is not running") {
		t.Errorf("logrotate's output does not say why the postrotate failed:\n%s", out)
	}
}

// waitFile waits (10 s at most) until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
