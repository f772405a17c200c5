package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/internal/syncbuf"
	"github.com/hfork/hfork/pool/wire"
)

// TestMain lets the test binary be a worker process, as cmd/hfork is one
// when HFORK_WORKER=1.
func TestMain(m *testing.M) {
	if os.Getenv(wire.EnvWorker) == "1" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// workerProcess is this test binary started as a worker, the way the
// master starts one: the socket as fd 3, the control pipe as fd 4.
type workerProcess struct {
	cmd     *exec.Cmd
	control *os.File // write end
	stderr  *syncbuf.Buffer
	sink    *notifySink
	addr    string
	exited  chan error
}

func startWorkerProcess(t *testing.T, l hclconfig.Listener) *workerProcess {
	t.Helper()
	return startWorkerProcessWith(t, l, nil)
}

// startWorkerProcessWith runs beforeSpec between the start of the process
// and the spec it waits for on the control pipe.
func startWorkerProcessWith(t *testing.T, l hclconfig.Listener, beforeSpec func(*workerProcess)) *workerProcess {
	t.Helper()
	return startWorkerProcessLevel(t, l, "info", beforeSpec)
}

// startWorkerProcessLevel is startWorkerProcessWith with the log level
// the spec gives.
func startWorkerProcessLevel(t *testing.T, l hclconfig.Listener, level string, beforeSpec func(*workerProcess)) *workerProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the child has its own fd
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cr, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	sink := newNotifySink(t)
	p := &workerProcess{control: cw, stderr: &syncbuf.Buffer{}, sink: sink, addr: ln.Addr().String(), exited: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(),
		wire.EnvWorker+"=1", wire.EnvControlFD+"=4",
		"LISTEN_FDS=1", "LISTEN_FDNAMES="+l.Name, "NOTIFY_SOCKET="+sink.addr)
	p.cmd.ExtraFiles = []*os.File{lf, cr}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		p.exited <- nil
		cw.Close()
		if t.Failed() {
			t.Logf("worker stderr:\n%s", p.stderr.String())
		}
	})
	if beforeSpec != nil {
		beforeSpec(p)
	}
	spec, _ := json.Marshal(wire.Spec{Listener: l, Gen: 3, LogLevel: level, LogFormat: "json"})
	if _, err := cw.Write(append(spec, '\n')); err != nil {
		t.Fatal(err)
	}
	sink.waitFor(t, "READY=1", has("READY", "1"))
	return p
}

// exitCode waits for the process and returns its exit code.
func (p *workerProcess) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		if err == nil {
			return 0
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(waitLimit):
		t.Fatal("worker process did not exit")
	}
	return -1
}

func helloListener(t *testing.T) hclconfig.Listener {
	l := testListener(hclconfig.ClassAsync)
	l.Name = "web"
	l.Bind = []string{"127.0.0.1:0"}
	l.AccessLog = hclconfig.AccessLog{File: filepath.Join(t.TempDir(), "access.log"), Format: "combined"}
	l.Routes = []hclconfig.Route{{
		Prefix: "/", App: hclconfig.AppRespond,
		Respond: hclconfig.Respond{Status: 200, Body: "hello\n"},
	}}
	return l
}

func TestMainServesAndDrains(t *testing.T) {
	l := helloListener(t)
	p := startWorkerProcess(t, l)

	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get("http://" + p.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello\n" {
		t.Fatalf("body %q", body)
	}

	// The master changes the log level; the worker follows.
	io.WriteString(p.control, `{"log_level":"debug"}`+"\n")
	waitUntil(t, "the debug line of the change", func() bool {
		return strings.Contains(p.stderr.String(), `"worker log settings changed"`)
	})

	// logrotate: rename, then USR1; the next line lands in a new file.
	rotated := l.AccessLog.File + ".1"
	if err := os.Rename(l.AccessLog.File, rotated); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGUSR1)
	waitUntil(t, "the reopened access log", func() bool {
		_, err := os.Stat(l.AccessLog.File)
		return err == nil
	})

	// An idle keep-alive connection would hold the drain for its grace.
	client.CloseIdleConnections()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code %d after a drain, want 0", code)
	}
	if b, _ := os.ReadFile(rotated); !strings.Contains(string(b), `"GET / HTTP/1.1" 200`) {
		t.Errorf("access log before rotation: %q", b)
	}

	// Every line carries the listener, the pid and the generation.
	pid := strconv.Itoa(p.cmd.Process.Pid)
	for line := range strings.SplitSeq(strings.TrimSpace(p.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		if rec["listener"] != "web" || strconv.Itoa(int(rec["pid"].(float64))) != pid || rec["gen"] != 3.0 {
			t.Errorf("line without listener, pid, gen: %q", line)
		}
	}
}

// TestMainKeepsEarlyUSR1: the master forwards USR1 to starting workers
// too. One that arrives while the worker still waits for its spec is
// handled once the worker runs (an unwatched SIGUSR1 would be dropped by
// Go, and a worker that opened its access log before a rotation would
// then write to the renamed file for ever).
func TestMainKeepsEarlyUSR1(t *testing.T) {
	if os.Geteuid() != 0 {
		// A worker is not dumpable: only root reads its threads' wchan.
		t.Skip("needs root to see where the worker waits")
	}
	l := helloListener(t)
	p := startWorkerProcessWith(t, l, func(p *workerProcess) {
		waitUntil(t, "the worker blocked on its control pipe", func() bool {
			tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", p.cmd.Process.Pid))
			for _, task := range tasks {
				if b, _ := os.ReadFile(task); strings.Contains(string(b), "pipe") {
					return true
				}
			}
			return false
		})
		p.cmd.Process.Signal(syscall.SIGUSR1)
	})
	waitUntil(t, "the early USR1 handled", func() bool {
		return strings.Contains(p.stderr.String(), `"access log reopened"`)
	})
}

func TestMainExitsWhenMasterGone(t *testing.T) {
	p := startWorkerProcess(t, helloListener(t))
	p.control.Close()
	if code := p.exitCode(t); code != 1 {
		t.Errorf("exit code %d when the master is gone, want 1", code)
	}
	if !strings.Contains(p.stderr.String(), "master gone") {
		t.Errorf("stderr does not say why:\n%s", p.stderr.String())
	}
}

func TestMainRejectsBadStart(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), wire.EnvWorker+"=1", wire.EnvControlFD+"=nope")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("exit %v, want code 2", err)
	}
	if !strings.Contains(stderr.String(), "worker cannot start") {
		t.Errorf("stderr %q", stderr.String())
	}
}
