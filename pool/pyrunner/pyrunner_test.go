package pyrunner

import (
	"bufio"
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

	"github.com/hfork/hfork/pool/wire"
)

// python is Debian's interpreter, which has the frameworks' packages.
const python = "/usr/bin/python3"

func needPython(t *testing.T, modules ...string) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not installed", python)
	}
	for _, m := range modules {
		if err := exec.Command(python, "-c", "import "+m).Run(); err != nil {
			t.Skipf("%s cannot import %s (apt-get install python3-%s)", python, m, m)
		}
	}
}

// runner is one Python worker started the way the master starts it: the
// runner on a pipe, a listening socket as fd 3, the Spec on the control
// pipe, and a notify socket that the test reads.
type runner struct {
	cmd    *exec.Cmd
	addr   string
	notify *net.UnixConn
	stderr *bytes.Buffer
	ctl    *os.File
	done   chan error
}

func startRunner(t *testing.T, class, app, dir string) *runner {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listenAt := ln.Addr().String()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	// File() leaves the fd blocking; the master's sockets are non-blocking.
	syscall.SetNonblock(int(lf.Fd()), true)
	addr := filepath.Join(t.TempDir(), "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	srcR, srcW, _ := os.Pipe()
	ctlR, ctlW, _ := os.Pipe()
	go func() { srcW.Write(Source()); srcW.Close() }()
	r := &runner{addr: listenAt, notify: nc, stderr: &bytes.Buffer{}, ctl: ctlW, done: make(chan error, 1)}
	r.cmd = exec.Command(python, "/dev/fd/5")
	r.cmd.Dir = dir
	r.cmd.ExtraFiles = []*os.File{lf, ctlR, srcR} // fds 3, 4, 5
	r.cmd.Env = append(wire.Environ(nil), wire.EnvListenFDs+"=1", wire.EnvListenFDNames+"=web", wire.EnvNotifySocket+"="+addr,
		wire.EnvControlFD+"=4", wire.EnvPySourceFD+"=5")
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	ctlR.Close()
	srcR.Close()
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		nc.Close()
		if t.Failed() {
			t.Logf("runner stderr:\n%s", r.stderr.String())
		}
	})
	spec := map[string]any{
		"listener": map[string]any{
			"name": "web", "class": class, "app": app, "dir": dir, "timeout": int64(10 * time.Second),
			"graceful_timeout": int64(5 * time.Second), "keepalive": int64(2 * time.Second),
			"threads": 2, "worker_connections": 10, "read_header_timeout": int64(5 * time.Second),
		},
		"gen": 1, "log_level": "debug", "log_format": "json",
	}
	b, _ := json.Marshal(spec)
	ctlW.Write(append(b, '\n'))
	return r
}

// waitNotify reads datagrams until one has key=value, or the worker exits.
func (r *runner) waitNotify(t *testing.T, key, value string) map[string]string {
	t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r.notify.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := r.notify.Read(buf)
		if err != nil {
			select {
			case err := <-r.done:
				r.done <- err
				t.Fatalf("worker exited (%v) before %s=%s", err, key, value)
			default:
			}
			continue
		}
		fields := map[string]string{}
		for line := range strings.SplitSeq(string(buf[:n]), "\n") {
			k, v, _ := strings.Cut(line, "=")
			fields[k] = v
		}
		if fields[key] == value {
			return fields
		}
	}
	t.Fatalf("no %s=%s within 15s", key, value)
	return nil
}

func writeApp(t *testing.T, src string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tapp.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const wsgiApp = `
def application(environ, start_response):
    body = ("default " + environ["PATH_INFO"] + " " + environ["wsgi.input"].read().decode()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

def create(greeting, punct="!"):
    def app(environ, start_response):
        body = (greeting + punct).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([body])  # no length: chunked on keep-alive
    return app
`

// TestLoadRules: gunicorn's rules for naming the app: the module alone
// means its `application`, and a factory takes literal arguments.
func TestLoadRules(t *testing.T) {
	needPython(t)
	dir := writeApp(t, wsgiApp)
	for _, tt := range []struct{ app, want string }{
		{"tapp", "default /x/y body"},
		{"tapp:application", "default /x/y body"},
		{`tapp:create("hi", punct="?")`, "hi?"},
	} {
		t.Run(tt.app, func(t *testing.T) {
			r := startRunner(t, "thread", tt.app, dir)
			r.waitNotify(t, wire.KeyReady, "1")
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Post("http://"+r.addr+"/x/y", "text/plain", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tt.want {
				t.Errorf("body %q, want %q", b, tt.want)
			}
			r.cmd.Process.Signal(syscall.SIGTERM)
			r.waitNotify(t, wire.KeyStopping, "1")
			if err := <-r.done; err != nil {
				t.Errorf("exit after drain: %v", err)
			}
			r.done <- nil
		})
	}
}

// TestImportErrorLine: an app that does not import is one error line that
// names the interpreter, the module and the exception, and exit status 3.
func TestImportErrorLine(t *testing.T) {
	needPython(t)
	dir := writeApp(t, "import no_such_module_here\n")
	r := startRunner(t, "sync", "tapp:app", dir)
	err := <-r.done
	r.done <- err
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want status 3", err)
	}
	sc := bufio.NewScanner(strings.NewReader(r.stderr.String()))
	var last map[string]any
	for sc.Scan() {
		json.Unmarshal(sc.Bytes(), &last)
	}
	if last["msg"] != "app failed to load" || last["python"] == "" || last["module"] != "tapp" ||
		!strings.Contains(fmt.Sprint(last["err"]), "No module named 'no_such_module_here'") {
		t.Errorf("last line %v", last)
	}
}

// TestKeepAliveAndCounters: the thread class keeps a connection alive across
// requests (chunked when the app gives no length) and reports its counters.
func TestKeepAliveAndCounters(t *testing.T) {
	needPython(t)
	dir := writeApp(t, wsgiApp)
	r := startRunner(t, "thread", `tapp:create("k")`, dir)
	r.waitNotify(t, wire.KeyReady, "1")
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 3 {
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "k!" || resp.Close || len(resp.TransferEncoding) == 0 {
			t.Fatalf("request %d: body %q close %v te %v", i, b, resp.Close, resp.TransferEncoding)
		}
	}
	beat := r.waitNotify(t, wire.KeyRequests, "3")
	// The metrics counters: three 2xx answers of two bytes each, on the
	// app's one route, each in some duration bucket.
	if got := beat[wire.KeyCodes]; got != "0,3,0,0,0,0,0,0,0,0" {
		t.Errorf("%s = %q, want three 2xx on the app's route", wire.KeyCodes, got)
	}
	if got := beat[wire.KeyBytes]; got != "6" {
		t.Errorf("%s = %q, want 6", wire.KeyBytes, got)
	}
	var inBuckets uint64
	dur := strings.Split(beat[wire.KeyDuration], ",")
	if len(dur) != len(wire.DurationBuckets)+2 {
		t.Fatalf("%s = %q: want %d buckets, one over, and the sum", wire.KeyDuration, beat[wire.KeyDuration], len(wire.DurationBuckets))
	}
	for _, v := range dur[:len(dur)-1] {
		var n uint64
		fmt.Sscan(v, &n)
		inBuckets += n
	}
	if inBuckets != 3 {
		t.Errorf("%s = %q: %d requests in the buckets, want 3", wire.KeyDuration, beat[wire.KeyDuration], inBuckets)
	}
	// A drain answers the next request on the connection with
	// "Connection: close".
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.waitNotify(t, wire.KeyStopping, "1")
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("request during the drain: %v", err)
	}
	io.ReadAll(resp.Body)
	if !resp.Close {
		t.Errorf("a response during the drain lacks Connection: close")
	}
	if err := <-r.done; err != nil {
		t.Errorf("exit after drain: %v", err)
	}
	r.done <- nil
}

// TestHTTPEdges: the WSGI classes' own HTTP/1.1 server takes a chunked
// body, answers HEAD without a body, and refuses a head over
// max_header_bytes with 431.
func TestHTTPEdges(t *testing.T) {
	needPython(t)
	dir := writeApp(t, wsgiApp)
	r := startRunner(t, "sync", "tapp", dir)
	r.waitNotify(t, wire.KeyReady, "1")
	roundTrip := func(req string) (*http.Response, string) {
		t.Helper()
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.Fields(req)[0]})
		if err != nil {
			t.Fatalf("%.40q: %v", req, err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := roundTrip("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
	if resp.StatusCode != 200 || body != "default /c abcde" {
		t.Errorf("chunked: %d %q", resp.StatusCode, body)
	}
	resp, body = roundTrip("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len("default /h ")) {
		t.Errorf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, _ = roundTrip("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+10) + "\r\n\r\n")
	if resp.StatusCode != 431 {
		t.Errorf("a 1 MiB header: status %d, want 431", resp.StatusCode)
	}
	resp, _ = roundTrip("GET / HTTP/9.9\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 505 {
		t.Errorf("HTTP/9.9: status %d, want 505", resp.StatusCode)
	}
}

// TestUSR1WhileImporting: a USR1 (log reopen) that arrives while the app
// still imports does not kill the worker.
func TestUSR1WhileImporting(t *testing.T) {
	needPython(t)
	dir := writeApp(t, "import time\ntime.sleep(1.5)\n"+wsgiApp)
	r := startRunner(t, "sync", "tapp", dir)
	// The app's import sleeps; send USR1 once the interpreter is past its
	// own start (the runner set its handler first thing).
	deadline := time.Now().Add(10 * time.Second)
	for !hasSigCaught(r.cmd.Process.Pid, syscall.SIGUSR1) {
		if time.Now().After(deadline) {
			t.Fatal("the runner never caught SIGUSR1")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.cmd.Process.Signal(syscall.SIGUSR1)
	r.waitNotify(t, wire.KeyReady, "1")
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// hasSigCaught reads SigCgt in /proc/PID/status.
func hasSigCaught(pid int, sig syscall.Signal) bool {
	for line := range strings.SplitSeq(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if v, ok := strings.CutPrefix(line, "SigCgt:\t"); ok {
			var mask uint64
			fmt.Sscanf(v, "%x", &mask)
			return mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// TestNotDumpable: the runner makes itself undumpable before the app
// imports (the kernel resets the flag on execve, so the master cannot):
// the app, running in it, reads PR_GET_DUMPABLE as 0.
func TestNotDumpable(t *testing.T) {
	needPython(t)
	dir := writeApp(t, `
import ctypes
_libc = ctypes.CDLL(None)
AT_IMPORT = _libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE

def application(environ, start_response):
    body = ("import=%d now=%d" % (AT_IMPORT, _libc.prctl(3, 0, 0, 0, 0))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`)
	r := startRunner(t, "sync", "tapp", dir)
	r.waitNotify(t, wire.KeyReady, "1")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + r.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "import=0 now=0" {
		t.Errorf("dumpable as the app sees it: %q, want import=0 now=0", b)
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	err = <-r.done
	r.done <- err
	if strings.Contains(r.stderr.String(), "worker stays dumpable") {
		t.Errorf("runner warned:\n%s", r.stderr.String())
	}
}

// TestDurationBuckets: the runner's histogram bounds are the master's, so
// its counts land in the right buckets.
func TestDurationBuckets(t *testing.T) {
	src, err := files.ReadFile("py/core.py")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range wire.DurationBuckets {
		want = append(want, strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
	}
	_, rest, ok := strings.Cut(string(src), "DURATION_BUCKETS = (")
	line, _, _ := strings.Cut(rest, ")")
	if !ok {
		t.Fatal("core.py has no DURATION_BUCKETS")
	}
	var got []string
	for f := range strings.SplitSeq(line, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			t.Fatalf("DURATION_BUCKETS entry %q: %v", f, err)
		}
		got = append(got, strconv.FormatFloat(v, 'f', -1, 64))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("core.py DURATION_BUCKETS = %v, wire.DurationBuckets = %v", got, want)
	}
}
