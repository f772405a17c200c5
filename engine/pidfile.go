package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotRunning says the pidfile names no live hfork master.
var ErrNotRunning = errors.New("hfork is not running")

// ReadPidfile returns the live hfork master a pidfile names.
func ReadPidfile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w (no pidfile at %s)", ErrNotRunning, path)
	}
	if err != nil {
		return 0, fmt.Errorf("read pidfile: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pidfile %s: not a pid: %q", path, strings.TrimSpace(string(b)))
	}
	if !isHfork(pid) {
		return 0, fmt.Errorf("%w (pidfile %s names pid %d, which is not a live hfork process)", ErrNotRunning, path, pid)
	}
	return pid, nil
}

// Running is what the pidfiles say about the masters running.
type Running struct {
	// Pid is the master in charge: the one signals and reloads are for.
	Pid int
	// Upgrading: a binary upgrade is under way and its new master is not
	// ready yet, so the old one, found through the ".oldbin" pidfile, is
	// still in charge.
	Upgrading bool
	// Draining is the old master of a finished upgrade that has not left
	// yet (0 when there is none).
	Draining int
}

// OldbinSuffix names where the pidfile moves while an upgrade's new master
// starts, as nginx does.
const OldbinSuffix = ".oldbin"

// FindMaster finds the master in charge through the pidfile at path,
// during an upgrade too: while the new master starts, the pidfile is at
// path+".oldbin" and the old master still leads; once the new one is
// ready, both files may name a live master until the old one has drained.
func FindMaster(path string) (Running, error) {
	var err error
	// The files move under us when an upgrade starts, fails or ends; a
	// second look sees where they settled.
	for range 3 {
		var pid int
		if pid, err = ReadPidfile(path); err == nil {
			if old, oerr := ReadPidfile(path + OldbinSuffix); oerr == nil && old != pid {
				return Running{Pid: pid, Draining: old}, nil
			}
			return Running{Pid: pid}, nil
		}
		if !errors.Is(err, ErrNotRunning) {
			return Running{}, err
		}
		if old, oerr := ReadPidfile(path + OldbinSuffix); oerr == nil {
			return Running{Pid: old, Upgrading: true}, nil
		}
	}
	return Running{}, err
}

// isHfork reports whether pid is alive and runs hfork.
func isHfork(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return bytes.Contains(argv0, []byte("hfork"))
}

// WritePidfile writes pid atomically (temp file, then rename), so a reader
// never sees a half-written pidfile.
func WritePidfile(path string, pid int) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write pidfile: %w", err)
	}
	// The temporary file is made with O_EXCL and moved by rename, which
	// replaces a symlink at path instead of following it; its mode is set
	// on the open file, as a chmod by name could follow a symlink swapped
	// in by whoever else may write in the directory.
	_, err = tmp.WriteString(strconv.Itoa(pid) + "\n")
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write pidfile: %w", err)
	}
	return nil
}

// RemovePidfile removes path if it still names pid.
func RemovePidfile(path string, pid int) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
		os.Remove(path)
	}
}
