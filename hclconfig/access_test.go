package hclconfig

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// otherUser is a user the test is not: nobody when the test runs as root
// (the layouts below are then root's, as on a server), else another
// system account. The checks read permission bits, so no switch is needed.
func otherUser(t *testing.T) string {
	t.Helper()
	me := os.Geteuid()
	for _, name := range []string{"nobody", "daemon", "bin", "sys"} {
		if u, err := user.Lookup(name); err == nil && u.Uid != fmt.Sprint(me) && u.Uid != "0" {
			return name
		}
	}
	t.Skip("no second non-root user on this machine")
	return ""
}

// accessDiags parses config (written to dir/server.hcl) and returns
// CheckAccess's diagnostics as "line: summary".
func accessDiags(t *testing.T, dir, config string) []string {
	t.Helper()
	path := filepath.Join(dir, "server.hcl")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c, files, diags := Parse(path, []byte(config))
	if diags.HasErrors() {
		t.Fatalf("config does not parse: %v", diags)
	}
	var out []string
	for _, d := range CheckAccess(c, files) {
		out = append(out, fmt.Sprintf("%d: %s", d.Subject.Start.Line, d.Summary))
		t.Logf("%s: %s", d.Summary, d.Detail)
	}
	return out
}

// openTempDir is a t.TempDir others may enter, as a server's /srv or /etc
// are: the testing package makes its parent 0700.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mkdir(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestCheckAccessRefusesBrokenLayouts: each layout of the report that
// passed -t and then failed at start is a diagnostic on its setting's line.
func TestCheckAccessRefusesBrokenLayouts(t *testing.T) {
	who := otherUser(t)
	dir := openTempDir(t)
	mkdir(t, filepath.Join(dir, "logs"), 0o755)    // the master's, not the workers'
	mkdir(t, filepath.Join(dir, "private"), 0o700) // nobody else may enter
	if err := os.WriteFile(filepath.Join(dir, "private", "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(dir, "private", "venv", "bin"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "private", "venv", "bin", "python"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := accessDiags(t, dir, fmt.Sprintf(`pidfile = "run/hfork.pid"
user = %q
log { file = "logs/hfork.log" }
listener "web" {
  bind = ["127.0.0.1:8080", "unix:sockets/web.sock"]
  access_log { file = "logs/web.access.log" }
  route "/" {
    static { root = "private" }
  }
}
listener "app" {
  bind    = "127.0.0.1:8081"
  class   = "exec"
  command = ["private/app"]
}
listener "script" {
  bind    = "127.0.0.1:8082"
  class   = "exec"
  command = ["./noexec"]
}
listener "lost" {
  bind    = "127.0.0.1:8083"
  class   = "exec"
  command = ["hfork-no-such-program"]
}
listener "shop" {
  bind = "127.0.0.1:8084"
  host "shop" {
    names = ["shop.example.com"]
    route "/" {
      static { root = "private" }
    }
  }
}
listener "py" {
  bind   = "127.0.0.1:8085"
  app    = "myapp:app"
  python = "private/venv/bin/python"
}
listener "pylost" {
  bind   = "127.0.0.1:8086"
  app    = "myapp:app"
  python = "hfork-no-such-python"
}
listener "upload" {
  bind = "127.0.0.1:8087"
  route "/" {
    proxy {
      upstream      = "http://127.0.0.1:9000"
      body_temp_dir = "logs"
    }
  }
  route "/stream/" {
    proxy {
      upstream          = "http://127.0.0.1:9000"
      request_buffering = false
      body_temp_dir     = "logs"
    }
  }
}
`, who))
	want := []string{
		"1: Missing pidfile directory",
		"5: Missing unix socket directory",
		"6: Access log directory not writable",
		"8: Static root not readable",
		"14: Program not executable",
		"19: Program not executable",
		"24: Program not found",
		"31: Static root not readable",
		"38: Program not executable",
		"43: Program not found",
		"50: Body temp directory not writable",
	}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckAccessAcceptsGoodLayout: the same settings with the
// directories made and given to the workers' user pass.
func TestCheckAccessAcceptsGoodLayout(t *testing.T) {
	who := otherUser(t)
	dir := openTempDir(t)
	for _, d := range []string{"run", "sockets", "logs", "www"} {
		mkdir(t, filepath.Join(dir, d), 0o755)
	}
	mkdir(t, filepath.Join(dir, "access"), 0o777) // writable by the workers' user without chown
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(dir, "venv", "bin"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "venv", "bin", "python"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := accessDiags(t, dir, fmt.Sprintf(`pidfile = "run/hfork.pid"
user = %q
log { file = "logs/hfork.log" }
listener "web" {
  bind = ["127.0.0.1:8080", "unix:sockets/web.sock"]
  access_log { file = "access/web.log" }
  route "/" {
    static { root = "www" }
  }
}
listener "app" {
  bind    = "127.0.0.1:8081"
  class   = "exec"
  command = ["./app"]
}
listener "sh" {
  bind    = "127.0.0.1:8082"
  class   = "exec"
  command = ["sh", "-c", "true"]
}
listener "py" {
  bind   = "127.0.0.1:8083"
  app    = "myapp:app"
  python = "venv/bin/python"
}
listener "pysh" {
  bind   = "127.0.0.1:8084"
  app    = "myapp:app"
  python = "sh"
}
listener "upload" {
  bind = "127.0.0.1:8085"
  route "/" {
    proxy {
      upstream      = "http://127.0.0.1:9000"
      body_temp_dir = "access"
    }
  }
}
`, who))
	if len(got) > 0 {
		t.Errorf("a good layout has diagnostics:\n%s", strings.Join(got, "\n"))
	}
}

// TestCheckAccessMaster: the master's own files are checked as the
// identity running -t. Root may write anywhere, so only a non-root run
// can see a master refused.
func TestCheckAccessMaster(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes through any mode bits; run as another user to see the master refused")
	}
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "ro"), 0o555)
	got := accessDiags(t, dir, `pidfile = "ro/hfork.pid"
log { file = "ro/hfork.log" }
listener "web" {
  bind = "127.0.0.1:8080"
  route "/" {
    respond {}
  }
}
`)
	want := []string{"1: Pidfile directory not writable", "2: Log file directory not writable"}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestIdentityAllows: the kernel's choice of owner, group or other bits,
// and root's exception for execute.
func TestIdentityAllows(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := fileOwner(fi)
	owner := identity{uid: uid, groups: []uint32{gid + 1}}
	member := identity{uid: uid + 1, groups: []uint32{gid}}
	other := identity{uid: uid + 1, groups: []uint32{gid + 1}}
	root := identity{uid: 0}
	for _, c := range []struct {
		id   identity
		want uint32
		ok   bool
	}{
		{owner, permR | permW, true}, {owner, permX, false},
		{member, permR, true}, {member, permW, false},
		{other, permR, false},
		{root, permR | permW, true}, {root, permX, false},
	} {
		if err := c.id.allows(f, c.want); (err == nil) != c.ok {
			t.Errorf("uid %d groups %v want %o: err = %v, want ok=%v", c.id.uid, c.id.groups, c.want, err, c.ok)
		}
	}
}
