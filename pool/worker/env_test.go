package worker

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// placeFD duplicates f's fd onto fd, as a parent's ExtraFiles would.
func placeFD(t *testing.T, f *os.File, fd int) {
	t.Helper()
	if err := syscall.Dup3(int(f.Fd()), fd, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestInheritListeners(t *testing.T) {
	dir, err := os.MkdirTemp("", "hf")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	unix, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	const first = 200
	for i, l := range []net.Listener{tcp, unix} {
		f, err := l.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			t.Fatal(err)
		}
		placeFD(t, f, first+i)
		f.Close()
	}

	lns, names, err := inheritListeners(envOf(map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:"}), first)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "web,unknown" {
		t.Errorf("names %v, want [web unknown]", names)
	}
	for i, l := range lns {
		want := []net.Listener{tcp, unix}[i].Addr()
		if l.Addr().String() != want.String() {
			t.Errorf("listener %d on %v, want %v", i, l.Addr(), want)
		}
		c, err := net.Dial(want.Network(), want.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		l.Close()
	}
	// The inherited fds themselves are closed: only the duplicates remain.
	for fd := first; fd < first+2; fd++ {
		if _, err := fcntlGetFD(fd); !errors.Is(err, syscall.EBADF) {
			t.Errorf("fd %d still open after inheriting it (%v)", fd, err)
		}
	}
}

func fcntlGetFD(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func TestInheritListenersErrors(t *testing.T) {
	for _, v := range []string{"", "0", "-1", "two"} {
		if _, _, err := inheritListeners(envOf(map[string]string{"LISTEN_FDS": v}), 200); err == nil {
			t.Errorf("LISTEN_FDS=%q accepted", v)
		}
	}
	// A pipe where a socket should be: the error names it, and the socket
	// inherited before it is not leaked.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	f, _ := tcp.(*net.TCPListener).File()
	placeFD(t, f, 210)
	f.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	placeFD(t, r, 211)
	_, _, err = inheritListeners(envOf(map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "ok:pipe"}), 210)
	if err == nil || !strings.Contains(err.Error(), "pipe (fd 211)") {
		t.Errorf("pipe as socket: %v", err)
	}
}

func TestProcsPerWorker(t *testing.T) {
	for _, tc := range []struct{ cpus, workers, want int }{
		{8, 2, 4}, {8, 3, 2}, {8, 8, 1}, {2, 8, 1}, {8, 0, 8}, {1, 1, 1},
	} {
		if got := procsPerWorker(tc.cpus, tc.workers); got != tc.want {
			t.Errorf("procsPerWorker(%d, %d) = %d, want %d", tc.cpus, tc.workers, got, tc.want)
		}
	}
	old := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(old)
	if n, set := setMaxProcs(envOf(map[string]string{"GOMAXPROCS": "3"}), 1000); set || n != old {
		t.Errorf("with GOMAXPROCS set: %d, %v; want %d, false", n, set, old)
	}
	if n, set := setMaxProcs(envOf(nil), 1000); !set || n != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("1000 workers: %d, %v; want 1, true", n, set)
	}
}
