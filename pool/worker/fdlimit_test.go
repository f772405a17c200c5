package worker

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// exhaustFDs lowers the process's soft fd limit to a little above what is
// open and opens /dev/null until the kernel says EMFILE. more takes what
// was freed since (the runtime closes fds of earlier tests in the
// background); free closes them all again and restores the limit.
func exhaustFDs(t *testing.T) (more, free func()) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	saved := lim
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	lim.Cur = uint64(len(ents) + 64)
	if lim.Cur > saved.Cur {
		lim.Cur = saved.Cur
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var fds []int
	done := false
	free = func() {
		if done {
			return
		}
		done = true
		for _, fd := range fds {
			syscall.Close(fd)
		}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved)
	}
	t.Cleanup(free)
	more = func() {
		for {
			fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err == syscall.EMFILE {
				return
			}
			if err != nil {
				free()
				t.Fatalf("opening /dev/null: %v", err)
			}
			fds = append(fds, fd)
		}
	}
	more()
	return more, free
}

// TestOutOfFDsAnswers503: with every file descriptor taken, an existing
// static file and a proxy route that must dial answer 503 with
// Retry-After on a connection already open, on the loop and on net/http,
// and an error is logged; once descriptors free up, the same requests
// are served again. Before, the file answered 404 (cacheable, logged
// only at debug) and the proxy 502.
//
// It runs in a process of its own (this test binary again): descriptors
// are the process's, and other tests' cleanups free theirs in the
// background, which would serve a request here.
func TestOutOfFDsAnswers503(t *testing.T) {
	if os.Getenv("HFORK_TEST_OWN_PROCESS") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfFDsAnswers503$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "HFORK_TEST_OWN_PROCESS=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestOutOfFDsAnswers503") {
			t.Fatalf("in its own process: %v\n%s", err, out)
		}
		return
	}
	for _, loop := range []bool{true, false} {
		t.Run(fmt.Sprintf("event_loop=%v", loop), func(t *testing.T) {
			l := loopSite(t)
			l.EventLoop = loop
			tw := startSite(t, l, nil, nil)
			c, br := dialSite(t, tw.addr)
			ask := func(path string) (int, string, string) {
				t.Helper()
				io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, body := readAnswer(t, br, "GET")
				return resp.StatusCode, resp.Header.Get("Retry-After"), body
			}
			if code, _, body := ask("/static/a.txt"); code != 200 || body != "file a\n" {
				t.Fatalf("before: %d %q", code, body)
			}
			// The file's fd closes just after its answer leaves; the next
			// answer comes after that.
			ask("/")
			more, free := exhaustFDs(t)
			for _, path := range []string{"/static/a.txt", "/dead/x"} {
				code, retry := 0, ""
				// An fd the runtime frees in the background may serve a
				// request: take it and ask again.
				for range 3 {
					more()
					if code, retry, _ = ask(path); code == 503 {
						break
					}
					ask("/")
				}
				if code != 503 || retry == "" {
					free()
					t.Fatalf("%s out of fds: %d, Retry-After %q; want 503 with Retry-After", path, code, retry)
				}
			}
			free()
			if code, _, body := ask("/static/a.txt"); code != 200 || body != "file a\n" {
				t.Fatalf("after the fds came back: %d %q", code, body)
			}
			logs, _ := siteLogs.Load(tw.addr)
			if s := logs.(*logBuffer).String(); !strings.Contains(s, "out of file descriptors; answering 503") {
				t.Errorf("no error logged:\n%s", s)
			}
		})
	}
}
