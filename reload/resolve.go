package reload

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxLinks matches Linux's MAXSYMLINKS: a chain longer than this is a loop for the kernel
// too, so the file could not be read through it anyway.
const maxLinks = 40

// deps is everything the bytes behind the config path depend on, in the spelling fsnotify
// uses for its event names (a watched directory joined with an entry name).
type deps struct {
	// home is the real directory that holds the configured name. It is watched even while
	// the file is missing, so that the file's return is seen.
	home string
	// names holds every directory entry on the way to the file: each symlink followed, the
	// file itself, or the first name that does not exist yet.
	names map[string]bool
	// dirs are the real directories holding those entries: the ones to watch.
	dirs map[string]bool
}

func (d *deps) add(dir, name string) {
	d.names[filepath.Join(dir, name)] = true
	d.dirs[dir] = true
}

// relevant reports whether an event on name can change what the config path reads.
// A watched directory itself counts: its removal takes the file with it.
func (d *deps) relevant(name string) bool {
	name = filepath.Clean(name)
	return d.names[name] || d.dirs[name]
}

// resolve walks path one name at a time, following symlinks as the kernel would, and records
// every entry it passes. A Kubernetes ConfigMap mount
//
//	server.hcl -> ..data/server.hcl
//	..data     -> ..2026_11_27_01
//
// yields server.hcl, ..data and ..2026_11_27_01/server.hcl, so swapping ..data is seen in the
// mount directory and an in-place write is seen in the timestamped one. The directory part of
// path is taken as a fixed place: it is resolved once, and its own symlinks (such as /var on
// macOS) are not watched. path must be absolute.
func resolve(path string) deps {
	d := deps{names: map[string]bool{}, dirs: map[string]bool{}}
	dir := filepath.Dir(path)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	d.home = dir
	cur := dir
	rest := []string{filepath.Base(path)}
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			// cur never contains a symlink, so its lexical parent is its real parent.
			cur = filepath.Dir(cur)
			continue
		}
		p := filepath.Join(cur, name)
		fi, err := os.Lstat(p)
		isLink := err == nil && fi.Mode()&fs.ModeSymlink != 0
		if err != nil || isLink || len(rest) == 0 {
			d.add(cur, name)
		}
		if err != nil {
			// Watching the first missing name is enough: whatever makes the path whole again
			// must create it.
			return d
		}
		if !isLink {
			cur = p
			continue
		}
		links++
		if links > maxLinks {
			return d
		}
		target, err := os.Readlink(p)
		if err != nil {
			return d
		}
		if filepath.IsAbs(target) {
			vol := filepath.VolumeName(target)
			cur = vol + string(filepath.Separator)
			target = target[len(vol):]
		}
		rest = append(strings.Split(filepath.ToSlash(target), "/"), rest...)
	}
	return d
}
