package reload

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	oldConfig = "pidfile = \"old.pid\"\n"
	newConfig = "pidfile = \"new.pid\"\n"
)

// Each save style must yield exactly one request, whatever events it makes on the way.

func TestAtomicRename(t *testing.T) {
	path := configFile(t, oldConfig)
	w, _ := start(t, path, true)
	tmp := path + ".tmp"
	write(t, tmp, newConfig)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	expectFileRequest(t, w)
}

func TestSedInPlace(t *testing.T) {
	sed, err := exec.LookPath("sed")
	if err != nil {
		t.Skip("no sed")
	}
	path := configFile(t, oldConfig)
	w, _ := start(t, path, true)
	// GNU and BSD sed both write a temporary file and rename it over the original.
	if out, err := exec.Command(sed, "-i.bak", "s/old/new/", path).CombinedOutput(); err != nil {
		t.Fatalf("sed: %v\n%s", err, out)
	}
	expectFileRequest(t, w)
}

// TestVimRenameSave replays vim's default write (backupcopy=auto on a plain file): probe
// file, original renamed to the backup, new file created and written, mode restored, backup
// deleted.
func TestVimRenameSave(t *testing.T) {
	path := configFile(t, oldConfig)
	w, _ := start(t, path, true)
	dir := filepath.Dir(path)
	probe := filepath.Join(dir, "4913")
	write(t, probe, "")
	must(t, os.Remove(probe))
	backup := path + "~"
	must(t, os.Rename(path, backup))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	must(t, err)
	_, err = f.WriteString(newConfig)
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
	must(t, os.Chmod(path, 0o644))
	must(t, os.Remove(backup))
	expectFileRequest(t, w)
}

// TestVimBackupCopySave replays `:set backupcopy=yes`: the original is copied to the
// backup, then truncated and written in place.
func TestVimBackupCopySave(t *testing.T) {
	path := configFile(t, oldConfig)
	w, _ := start(t, path, true)
	backup := path + "~"
	write(t, backup, oldConfig)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	_, err = f.WriteString(newConfig)
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
	must(t, os.Remove(backup))
	expectFileRequest(t, w)
}

// TestRealVim runs vim itself, in both backup modes, when it is installed.
func TestRealVim(t *testing.T) {
	vim, err := exec.LookPath("vim")
	if err != nil {
		t.Skip("no vim")
	}
	for _, mode := range []string{"auto", "yes", "no"} {
		t.Run("backupcopy="+mode, func(t *testing.T) {
			path := configFile(t, oldConfig)
			w, _ := start(t, path, true)
			cmd := exec.Command(vim, "-u", "NONE", "-i", "NONE", "-N", "-n", "-es",
				"-c", "set writebackup backupcopy="+mode,
				"-c", "%s/old/new/", "-c", "wq", path)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("vim: %v\n%s", err, out)
			}
			got, err := os.ReadFile(path)
			must(t, err)
			if string(got) != newConfig {
				t.Fatalf("vim wrote %q", got)
			}
			expectFileRequest(t, w)
		})
	}
}

// TestTruncateThenWrite is `>` redirection or an editor writing in place: the file is
// briefly empty, and the debounce hides that in the common case.
func TestTruncateThenWrite(t *testing.T) {
	path := configFile(t, oldConfig)
	w, _ := start(t, path, true)
	must(t, os.Truncate(path, 0))
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	for _, line := range strings.SplitAfter(newConfig, " ") {
		_, err = f.WriteString(line)
		must(t, err)
	}
	must(t, f.Close())
	expectFileRequest(t, w)
}

func TestUnchangedBytes(t *testing.T) {
	path := configFile(t, oldConfig)
	w, _ := start(t, path, true)

	now := time.Now().Add(time.Minute)
	must(t, os.Chtimes(path, now, now)) // touch
	expectNone(t, w)
	must(t, os.Chmod(path, 0o600))
	expectNone(t, w)
	write(t, path, oldConfig) // same bytes, in place
	expectNone(t, w)
	tmp := path + ".tmp" // same bytes, by rename
	write(t, tmp, oldConfig)
	must(t, os.Rename(tmp, path))
	expectNone(t, w)

	// The events above were seen and judged, not missed: a real change still comes through.
	write(t, path, newConfig)
	expectFileRequest(t, w)
}

func TestRemovedThenRecreated(t *testing.T) {
	path := configFile(t, oldConfig)
	w, logs := start(t, path, true)
	must(t, os.Remove(path))
	expectNone(t, w)
	if !strings.Contains(logs.String(), "config file is gone") {
		t.Errorf("removal not logged")
	}
	write(t, path, newConfig)
	expectFileRequest(t, w)
	// Still watching after the new file took the old name.
	write(t, path, oldConfig)
	expectFileRequest(t, w)
}

func TestMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.hcl")
	w, _ := start(t, path, true)
	write(t, path, newConfig)
	expectFileRequest(t, w)
}

// configMap lays out dir the way the kubelet's atomic writer does and returns a function
// that publishes new content by the same steps it takes.
func configMap(t *testing.T, dir, content string) (path string, update func(string)) {
	t.Helper()
	gen := 0
	var current string
	update = func(content string) {
		gen++
		ts := fmt.Sprintf("..2026_11_27_%02d", gen)
		must(t, os.Mkdir(filepath.Join(dir, ts), 0o755))
		write(t, filepath.Join(dir, ts, "server.hcl"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		must(t, os.Symlink(ts, tmp))
		must(t, os.Rename(tmp, filepath.Join(dir, "..data")))
		if current != "" {
			must(t, os.RemoveAll(filepath.Join(dir, current)))
		}
		current = ts
	}
	update(content)
	path = filepath.Join(dir, "server.hcl")
	must(t, os.Symlink(filepath.Join("..data", "server.hcl"), path))
	return path, update
}

func TestConfigMapSwap(t *testing.T) {
	path, update := configMap(t, t.TempDir(), oldConfig)
	w, _ := start(t, path, true)
	update(newConfig)
	expectFileRequest(t, w)
	// The watch followed the new timestamped directory.
	update(oldConfig)
	expectFileRequest(t, w)
	update(oldConfig) // a resync with the same bytes
	expectNone(t, w)
}

// TestSymlinkElsewhere: the configured name points into another directory; a write there is
// a change, and so is pointing the link somewhere else.
func TestSymlinkElsewhere(t *testing.T) {
	realDir := t.TempDir()
	target := filepath.Join(realDir, "real.hcl")
	write(t, target, oldConfig)
	path := filepath.Join(t.TempDir(), "server.hcl")
	must(t, os.Symlink(target, path))
	w, _ := start(t, path, true)

	write(t, target, newConfig)
	expectFileRequest(t, w)

	other := filepath.Join(realDir, "other.hcl")
	write(t, other, "pidfile = \"other.pid\"\n")
	link := path + ".new"
	must(t, os.Symlink(other, link))
	must(t, os.Rename(link, path))
	expectFileRequest(t, w)

	// The old target is no longer the config.
	write(t, target, oldConfig)
	expectNone(t, w)
	write(t, other, newConfig)
	expectFileRequest(t, w)
}

func TestOtherFilesIgnored(t *testing.T) {
	path := configFile(t, oldConfig)
	w, logs := start(t, path, true)
	write(t, filepath.Join(filepath.Dir(path), "other.hcl"), newConfig)
	write(t, path+".swp", newConfig)
	expectNone(t, w)
	if strings.Contains(logs.String(), "config file event") {
		t.Errorf("an event on another file was taken for the config's")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
