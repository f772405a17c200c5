package listeners

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func statSock(t *testing.T, path string) (os.FileMode, int, int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return os.FileMode(st.Mode & 0o777), int(st.Uid), int(st.Gid)
}

// TestSocketPerms: a unix socket gets its mode and owner when it is bound;
// a kept socket gets new ones only from SetPerms, when a reload commits.
func TestSocketPerms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.sock")
	addr := "unix:" + path
	b := Bind{Addr: addr, Mode: "0660"}
	root := os.Geteuid() == 0
	if root {
		// nobody and nogroup (65534) exist on every Debian-like machine; by id
		// they need no entry at all.
		b.Owner, b.Group = "65534", "65534"
	}
	set := NewSet(nil)
	defer set.CloseAll(false)
	if err := set.Prepare([]Bind{b}); err != nil {
		t.Fatal(err)
	}
	mode, uid, gid := statSock(t, path)
	if mode != 0o660 {
		t.Errorf("mode %o, want 660", mode)
	}
	if root && (uid != 65534 || gid != 65534) {
		t.Errorf("owner %d:%d, want 65534:65534", uid, gid)
	}

	b.Mode = "0600"
	if err := set.Prepare([]Bind{b}); err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := statSock(t, path); mode != 0o660 {
		t.Errorf("Prepare changed a kept socket's mode to %o before the reload committed", mode)
	}
	if err := set.SetPerms([]Bind{b}); err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := statSock(t, path); mode != 0o600 {
		t.Errorf("mode %o after SetPerms, want 600", mode)
	}

	// A path that is no longer our socket is never touched.
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("x"), 0o644)
	os.Remove(path)
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	err := set.SetPerms([]Bind{{Addr: addr, Mode: "0666"}})
	if err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("SetPerms through a symlink: %v", err)
	}
	if fi, _ := os.Stat(victim); fi.Mode().Perm() != 0o644 {
		t.Errorf("the symlink's target became %v", fi.Mode().Perm())
	}
	os.Remove(path)
}

func TestBindPermErrors(t *testing.T) {
	dir := t.TempDir()
	set := NewSet(nil)
	defer set.CloseAll(false)
	for _, b := range []Bind{
		{Addr: "unix:" + filepath.Join(dir, "a.sock"), Mode: "999"},
		{Addr: "unix:" + filepath.Join(dir, "b.sock"), Owner: "hfork-no-such-user"},
		{Addr: "unix:" + filepath.Join(dir, "c.sock"), Group: "hfork-no-such-group"},
	} {
		if err := set.Prepare([]Bind{b}); err == nil {
			t.Errorf("%+v prepared", b)
		}
	}
	if len(set.All()) != 0 {
		t.Error("a failed Prepare left a socket open")
	}
	if got := Addrs([]Bind{{Addr: "a"}, {Addr: "b"}}); strings.Join(got, ",") != "a,b" {
		t.Errorf("Addrs = %v", got)
	}
}

// TestUnixBindRefusesSymlink: a symlink planted at a unix bind path, even
// one naming a stale socket elsewhere, is neither followed nor removed:
// the bind fails and both files stay.
func TestUnixBindRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	elsewhere := filepath.Join(dir, "elsewhere.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: elsewhere}); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd) // stale: bound, nobody listens
	path := filepath.Join(dir, "web.sock")
	if err := os.Symlink(elsewhere, path); err != nil {
		t.Fatal(err)
	}
	set := NewSet(nil)
	defer set.CloseAll(false)
	err = set.Prepare([]Bind{{Addr: "unix:" + path, Mode: "0666"}})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Prepare on a planted symlink: err = %v, want a refusal", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was removed or replaced: %v", err)
	}
	if fi, err := os.Lstat(elsewhere); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the socket it names was removed: %v", err)
	} else if fi.Mode().Perm() == 0o666 {
		t.Errorf("the socket it names got the configured mode")
	}
}
