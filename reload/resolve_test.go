package reload

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveConfigMap(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	path, _ := configMap(t, dir, oldConfig)
	d := resolve(path)
	ts := filepath.Join(dir, "..2026_11_27_01")
	for _, name := range []string{path, filepath.Join(dir, "..data"), filepath.Join(ts, "server.hcl")} {
		if !d.names[name] {
			t.Errorf("%s not among the dependencies %v", name, d.names)
		}
	}
	if len(d.dirs) != 2 || !d.dirs[dir] || !d.dirs[ts] {
		t.Errorf("dirs = %v, want %s and %s", d.dirs, dir, ts)
	}
	if d.home != dir {
		t.Errorf("home = %s, want %s", d.home, dir)
	}
}

func TestResolveMissingAndLoop(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	// A link into a directory that does not exist yet: its creation is the change to see.
	link := filepath.Join(dir, "link.hcl")
	must(t, os.Symlink(filepath.Join("sub", "real.hcl"), link))
	d := resolve(link)
	if !d.names[link] || !d.names[filepath.Join(dir, "sub")] || len(d.names) != 2 {
		t.Errorf("missing target: names = %v", d.names)
	}

	loop := filepath.Join(dir, "server.hcl")
	must(t, os.Symlink("server.hcl", loop))
	if d := resolve(loop); !d.names[loop] || !d.dirs[dir] {
		t.Errorf("loop: names = %v", d.names)
	}
}
