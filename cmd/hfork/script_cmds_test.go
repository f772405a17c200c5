package main

import (
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
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// setupScript gives each script free loopback ports as $PORT1..$PORT4
// (configs read them with env("PORT1")) and a copy of examples/apps in
// $WORK/apps, so the exec scripts run the example programs themselves.
func setupScript(env *testscript.Env) error {
	if err := os.CopyFS(filepath.Join(env.WorkDir, "apps"), os.DirFS(filepath.Join("..", "..", "examples", "apps"))); err != nil {
		return fmt.Errorf("copy examples/apps: %w", err)
	}
	for i := 1; i <= 4; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		env.Setenv("PORT"+strconv.Itoa(i), strconv.Itoa(port))
	}
	return nil
}

// scriptCondition knows [python:MODULE]: /usr/bin/python3 can import
// MODULE. A script skips without it, except under CI, which installs every
// framework: there a missing one is an error, not a silent skip.
func scriptCondition(cond string) (bool, error) {
	mod, ok := strings.CutPrefix(cond, "python:")
	if !ok {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if exec.Command("/usr/bin/python3", "-c", "import "+mod).Run() == nil {
		return true, nil
	}
	if os.Getenv("CI") == "true" {
		return false, fmt.Errorf("python module %s is missing; .ci/run installs it", mod)
	}
	return false, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"httpget": cmdHTTPGet,
	"waitfor": cmdWaitFor,
	"sig":     cmdSig,
	"workers": cmdWorkers,
	"stopped": cmdStopped,
	"waitpid": cmdWaitPid,
}

// httpget [-wait=DURATION] URL [STATUS]: GET URL, retrying refused
// connections and waiting for the answer for up to DURATION (10s), and
// print the body (and headers, as "Header: value" lines, first) to stdout.
// With STATUS, the response must have that status. A longer wait is for a
// first request that waits for a worker whose boot is slow (a large
// import on a loaded machine).
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	wait := 10 * time.Second
	if len(args) > 0 && strings.HasPrefix(args[0], "-wait=") {
		d, err := time.ParseDuration(strings.TrimPrefix(args[0], "-wait="))
		if err != nil || d <= 0 {
			ts.Fatalf("httpget: bad %s", args[0])
		}
		wait, args = d, args[1:]
	}
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: httpget [-wait=DURATION] URL [STATUS]")
	}
	resp, body, err := getWithin(args[0], wait)
	if err != nil {
		ts.Fatalf("httpget %s: %v", args[0], err)
	}
	if len(args) == 2 {
		want, _ := strconv.Atoi(args[1])
		if (resp.StatusCode == want) == neg {
			ts.Fatalf("httpget %s: status %d, want %s%d", args[0], resp.StatusCode, map[bool]string{true: "not ", false: ""}[neg], want)
		}
	}
	var b strings.Builder
	if resp.Close {
		// net/http's client removes "Connection: close" from the header map.
		b.WriteString("Connection: close\n")
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.Write(body)
	ts.Stdout().Write([]byte(b.String()))
}

func get(url string) (*http.Response, []byte, error) { return getWithin(url, 10*time.Second) }

// getWithin GETs url, retrying refused connections until wait has passed;
// one request may take wait too.
func getWithin(url string, wait time.Duration) (*http.Response, []byte, error) {
	deadline := time.Now().Add(wait)
	for {
		// A transport of its own per request: nothing pooled or pre-dialed
		// can carry a request over a connection opened earlier.
		c := &http.Client{
			Timeout:       wait,
			Transport:     &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		resp, err := c.Get(url)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, body, err
		}
		if time.Now().After(deadline) {
			return nil, nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitfor URL TEXT: poll URL until its body contains TEXT (15s at most).
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitfor URL TEXT")
	}
	deadline := time.Now().Add(15 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		_, body, err := get(args[0])
		if err == nil {
			last = string(body)
			if strings.Contains(last, args[1]) != neg {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("waitfor %s %q: last body %q", args[0], args[1], last)
}

// readPid reads a pidfile relative to the script's work dir, waiting up to
// 10s for it to appear.
func readPid(ts *testscript.TestScript, path string) int {
	path = ts.MkAbs(path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no pid in %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var sigNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH,
	"TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "KILL": syscall.SIGKILL,
}

// sig NAME PIDFILE: send signal NAME to the pid in PIDFILE.
func cmdSig(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sig NAME PIDFILE")
	}
	s, ok := sigNames[args[0]]
	if !ok {
		ts.Fatalf("sig: unknown signal %q", args[0])
	}
	ts.Check(syscall.Kill(readPid(ts, args[1]), s))
}

// procStat reads a process's state letter and parent pid from
// /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold spaces and
// parentheses, so the fields start after the last ')').
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// procChildren lists every process whose parent is pid, zombies included,
// by state.
func procChildren(pid int) map[int]string {
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(cpid); ok && ppid == pid {
			out[cpid] = state
		}
	}
	return out
}

// children lists the live (not zombie) children of pid, with their
// command lines.
func children(pid int) map[int]string {
	out := map[int]string{}
	for cpid, state := range procChildren(pid) {
		if state == "Z" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cpid), "cmdline"))
		out[cpid] = strings.TrimRight(strings.ReplaceAll(string(cmd), "\x00", " "), " ")
	}
	return out
}

// workers PIDFILE LISTENER N: wait (10s at most) until the master in
// PIDFILE has exactly N live workers for LISTENER ("hfork: worker NAME" or
// "hfork: exec NAME" processes), then print their pids.
func cmdWorkers(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: workers PIDFILE LISTENER N")
	}
	want, _ := strconv.Atoi(args[2])
	pid := readPid(ts, args[0])
	deadline := time.Now().Add(10 * time.Second)
	var got []int
	for {
		got = got[:0]
		for cpid, cmd := range children(pid) {
			if isWorker(cpid, cmd, args[1]) {
				got = append(got, cpid)
			}
		}
		if len(got) == want {
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("listener %s has %d workers, want %d", args[1], len(got), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range got {
		fmt.Fprintln(ts.Stdout(), p)
	}
}

// isWorker reports whether a master's child serves listener: a built-in
// worker by its title, an exec'd program (whose command line is its own
// once the shim has exec'd it) by the LISTEN_FDNAMES it was handed.
func isWorker(pid int, cmdline, listener string) bool {
	if cmdline == "hfork: worker "+listener || strings.HasPrefix(cmdline, "hfork: exec "+listener) {
		return true
	}
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "LISTEN_FDNAMES="); ok {
			name, _, _ := strings.Cut(v, ":")
			return name == listener
		}
	}
	return false
}

// stopped PIDFILE SIGNAL: note the master's children, send SIGNAL, then
// wait (15s at most) until the master and every one of them are gone.
func cmdStopped(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: stopped PIDFILE SIGNAL")
	}
	pid := readPid(ts, args[0])
	kids := children(pid)
	if len(kids) == 0 {
		ts.Fatalf("master %d has no children", pid)
	}
	ts.Check(syscall.Kill(pid, sigNames[args[1]]))
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := []string{}
		if alive(pid) {
			left = append(left, "master "+strconv.Itoa(pid))
		}
		for k, cmd := range kids {
			if alive(k) {
				left = append(left, fmt.Sprintf("%d (%s)", k, cmd))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("still running after %s: %s", args[1], strings.Join(left, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != "Z"
}

// waitpid PID: wait (15s at most) until PID is gone.
func cmdWaitPid(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitpid PID")
	}
	pid, _ := strconv.Atoi(args[0])
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			ts.Fatalf("pid %d still alive", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
