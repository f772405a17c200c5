package pool

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/internal/syncbuf"
)

// fakeOS stands in for the operating system: Start hands out pids and
// keeps the read end of each built-in worker's control pipe, Signal
// records, and the clock moves only when a test moves it.
type fakeOS struct {
	t        testing.TB
	now      time.Time
	next     int
	startErr error  // the next Start fails with it
	say      string // what each started "worker" prints on stderr
	linger   bool   // a grandchild keeps each stderr pipe open
	lingers  []*os.File
	starts   []time.Time
	sent     []sentSignal
	released []int
	exits    []ExitEvent
	controls map[int]*os.File
}

type sentSignal struct {
	pid int
	sig syscall.Signal
}

func newFakeOS(t testing.TB) *fakeOS {
	f := &fakeOS{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), next: 1000, controls: map[int]*os.File{}}
	t.Cleanup(func() {
		for _, c := range f.controls {
			c.Close()
		}
		for _, c := range f.lingers {
			c.Close()
		}
	})
	return f
}

func (f *fakeOS) os() *OS {
	return &OS{
		Start: func(cmd *exec.Cmd) (int, error) {
			f.starts = append(f.starts, f.now)
			if err := f.startErr; err != nil {
				return 0, err
			}
			f.next++
			if files := cmd.ExtraFiles; isWorkerCmd(cmd) {
				// The control pipe's read end is the last file; the pool
				// closes its own copy after Start.
				f.controls[f.next] = f.dup(files[len(files)-1])
			}
			if stderr, ok := cmd.Stderr.(*os.File); ok {
				if f.say != "" {
					stderr.WriteString(f.say + "\n")
				}
				if f.linger {
					f.lingers = append(f.lingers, f.dup(stderr))
				}
			}
			return f.next, nil
		},
		Signal: func(pid int, sig syscall.Signal) error {
			f.sent = append(f.sent, sentSignal{pid, sig})
			return nil
		},
		Release: func(pid int) { f.released = append(f.released, pid) },
		Reap: func() []ExitEvent {
			out := f.exits
			f.exits = nil
			return out
		},
		Now: func() time.Time { return f.now },
	}
}

func (f *fakeOS) dup(file *os.File) *os.File {
	fd, err := syscall.Dup(int(file.Fd()))
	if err != nil {
		f.t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), file.Name())
}

func isWorkerCmd(cmd *exec.Cmd) bool {
	return strings.HasPrefix(cmd.Args[0], "hfork: worker ")
}

// signals is what pid was sent, in order.
func (f *fakeOS) signals(pid int) []syscall.Signal {
	var out []syscall.Signal
	for _, s := range f.sent {
		if s.pid == pid {
			out = append(out, s.sig)
		}
	}
	return out
}

var errNoFork = errors.New("fork: resource temporarily unavailable")

// testListener is a small built-in listener with short timeouts.
func testListener(class string, workers int) hclconfig.Listener {
	return hclconfig.Listener{
		Name: "web", Class: class, Workers: workers,
		Timeout: 2 * time.Second, BootTimeout: 5 * time.Second, GracefulTimeout: 3 * time.Second,
	}
}

func newTestPool(t testing.TB, f *fakeOS, l hclconfig.Listener, staged bool) (*Pool, *syncbuf.Buffer) {
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(Config{
		Listener: l, Gen: 1, LogLevel: "info", LogFormat: "json",
		OS: f.os(), Output: NewOutput(io.Discard, log), Log: log, Staged: staged,
	}), logs
}
