package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/engine"
)

// debianPython has Debian's python3-* framework packages (.ci/run installs
// them); the python3 first on PATH may be another build.
const debianPython = "/usr/bin/python3"

// needPython skips the test, saying what to install, when the interpreter
// lacks one of the modules.
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Skipf("%s not installed", debianPython)
	}
	for _, m := range modules {
		if err := exec.Command(debianPython, "-c", "import "+m).Run(); err != nil {
			t.Skipf("%s cannot import %s: apt-get install python3-%s", debianPython, m, m)
		}
	}
}

// appsDir is examples/apps, where the example Python apps live.
func appsDir(t *testing.T) string {
	d, err := filepath.Abs("../../examples/apps")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func appConfig(port int, class, app, dir, extra string) string {
	return appConfigN(port, 2, class, app, dir, extra)
}

func appConfigN(port, workers int, class, app, dir, extra string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
}
reload { watch = false }
listener "py" {
  bind    = "127.0.0.1:%d"
  app     = %q
  class   = %q
  python  = %q
  dir     = %q
  workers = %d
  graceful_timeout = "10s"
  env     = { GREETING = "hi" }
  %s
}
`, port, app, class, debianPython, dir, workers, extra)
}

// TestAppClassesServe: each class serves its framework's app.
func TestAppClassesServe(t *testing.T) {
	for _, tt := range []struct {
		class, app, want string
		modules          []string
	}{
		{"sync", "flask_app:app", "hi from flask\n", []string{"flask"}},
		{"thread", `flask_app:create_app("hey")`, "hey from flask\n", []string{"flask"}},
		{"gevent", "flask_app:app", "hi from flask\n", []string{"flask", "gevent"}},
		{"eventlet", "flask_app:app", "hi from flask\n", []string{"flask", "eventlet"}},
		{"tornado", "tornado_hello:make_app()", "hi from tornado\n", []string{"tornado"}},
		{"aiohttp", "aiohttp_hello:app", "hi from aiohttp\n", []string{"aiohttp"}},
		{"asgi", "starlette_hello:app", "hi from starlette\n", []string{"starlette", "uvicorn"}},
		{"asgi", "fastapi_hello:app", `{"greeting":"hi from fastapi"}`, []string{"fastapi", "uvicorn"}},
	} {
		t.Run(tt.class+"/"+tt.app, func(t *testing.T) {
			needPython(t, tt.modules...)
			port, mport := mustFreePort(t), mustFreePort(t)
			logFile := filepath.Join(t.TempDir(), "access.log")
			m := startMaster(t, "", fmt.Sprintf("metrics {\n  bind = \"127.0.0.1:%d\"\n}\n", mport)+
				appConfigN(port, 1, tt.class, tt.app, appsDir(t),
					fmt.Sprintf("boot_timeout = \"90s\"\n access_log {\n file = %q\n format = \"json\"\n }", logFile)))
			// The boot is the framework's import: seconds for eventlet,
			// more on a loaded machine.
			m.waitLog(`"msg":"worker ready"`, 1, 90*time.Second)
			waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), tt.want)
			// The access log reaches its file within a heartbeat.
			deadline := time.Now().Add(10 * time.Second)
			for {
				b, _ := os.ReadFile(logFile)
				if strings.Contains(string(b), `"method":"GET","path":"/"`) && strings.Contains(string(b), `"status":200`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("access log lacks the request: %q", b)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The runner's counters reach the master's metrics with the
			// next heartbeat, the app counted as the route "/".
			murl := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
			ms := waitMetric(t, murl, `hfork_http_requests_total{listener="py",route="/",status_class="2xx"}`,
				func(v float64) bool { return v >= 1 })
			if c := ms[`hfork_http_request_duration_seconds_count{listener="py"}`]; c < 1 {
				t.Errorf("duration count %v, want at least 1", c)
			}
			if b := ms[`hfork_http_response_body_bytes_total{listener="py"}`]; b < float64(len(tt.want)) {
				t.Errorf("body bytes %v, want at least %d", b, len(tt.want))
			}
		})
	}
}

// hupApp is an app whose answer is in its code, so a HUP after an edit
// shows whether the new code is served.
const hupApp = `
VERSION = %q

def app(environ, start_response):
    body = VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// hupApps are, per class, an app whose answer is VERSION, in the
// framework the class runs (tornado also runs WSGI apps, but its own kind
// is what its users deploy).
var hupApps = map[string]struct {
	src, app string
	modules  []string
}{
	"tornado": {`
import tornado.web
VERSION = %q

class Version(tornado.web.RequestHandler):
    def get(self):
        self.write(VERSION)

def make_app():
    return tornado.web.Application([(r"/", Version)])
`, "hupapp:make_app()", []string{"tornado"}},
	"aiohttp": {`
from aiohttp import web
VERSION = %q

async def version(request):
    return web.Response(text=VERSION)

app = web.Application()
app.router.add_get("/", version)
`, "hupapp:app", []string{"aiohttp"}},
	"asgi": {`
VERSION = %q

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = VERSION.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
`, "hupapp:app", []string{"uvicorn"}},
}

// TestAppHUPServesNewCode: under keep-alive load, each HUP after the app's
// code changed serves the new code, and no request fails, in every class.
func TestAppHUPServesNewCode(t *testing.T) {
	skipShort(t)
	for _, class := range []string{"thread", "gevent", "eventlet", "tornado", "aiohttp", "asgi"} {
		t.Run(class, func(t *testing.T) {
			src, spec, modules := hupApp, "hupapp:app", []string{class}
			if a, ok := hupApps[class]; ok {
				src, spec, modules = a.src, a.app, a.modules
			}
			if class == "thread" {
				modules = nil
			}
			needPython(t, modules...)
			dir := t.TempDir()
			write := func(v string) {
				// Every version has the same size, and two may be written
				// within one second: Python would take the bytecode cached
				// for the previous one as fresh (it compares size and mtime
				// in seconds).
				os.RemoveAll(filepath.Join(dir, "__pycache__"))
				if err := os.WriteFile(filepath.Join(dir, "hupapp.py"), []byte(fmt.Sprintf(src, v)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("v0")
			port := mustFreePort(t)
			// A worker's boot is its framework's import: eventlet's took
			// over 20s with the whole suite running.
			m := startMaster(t, "", appConfig(port, class, spec, dir, `keepalive = "2s"
  boot_timeout = "90s"`))
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			// Every first-generation worker has imported v0 before v1 is
			// written.
			m.waitLog(`"msg":"hfork ready"`, 1, 90*time.Second)
			waitBody(t, url, "v0")
			l := loadOn(t, port)
			hups := 3
			if class != "thread" && class != "gevent" {
				// Each boot is a framework's import (eventlet's takes
				// seconds); two HUPs show the new code twice.
				hups = 2
			}
			for i := 1; i <= hups; i++ {
				write(fmt.Sprintf("v%d", i))
				m.signal(syscall.SIGHUP)
				m.waitLog(`"msg":"reload complete"`, i, 90*time.Second)
				waitBody(t, url, fmt.Sprintf("v%d", i))
			}
			l.requireNoFailures(t, fmt.Sprintf("across %d HUPs", hups))
			if !strings.Contains(m.log.String(), `"action":"replace","changed":["restart"]`) {
				t.Errorf("the reload plan does not say it restarts the code")
			}
		})
	}
}

// TestAppMaxRequests: a worker that served max_requests is replaced, ready
// first, with no failed request.
func TestAppMaxRequests(t *testing.T) {
	skipShort(t)
	needPython(t, "flask")
	port := mustFreePort(t)
	m := startMaster(t, "", appConfig(port, "sync", "flask_app:app", appsDir(t), "max_requests = 100\n  max_requests_jitter = 20"))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "hi from flask\n")
	l := loadOn(t, port)
	m.waitLog("max_requests reached; replacement ready", 2, 60*time.Second)
	l.requireNoFailures(t, "across max_requests recycles")
}

// TestAppSyncTimeout: a sync request running past timeout gets its worker
// killed and replaced, with a log line naming the request.
func TestAppSyncTimeout(t *testing.T) {
	needPython(t, "flask")
	port := mustFreePort(t)
	m := startMaster(t, "", appConfig(port, "sync", "flask_app:app", appsDir(t), `timeout = "1s"`))
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitBody(t, base, "hi from flask\n")
	go get(base + "sleep?s=30")
	m.waitLog(`"request":"GET /sleep?s=30"`, 1, 20*time.Second)
	m.waitLog(`"msg":"worker exited unexpectedly; replacing it"`, 1, 10*time.Second)
	m.waitLog(`"msg":"worker ready"`, 3, 20*time.Second)
	waitBody(t, base, "hi from flask\n")
}

// TestAppImportErrorOnHUPKeepsOld: a HUP whose new code does not import
// fails the reload, names the module, and the old workers keep serving.
func TestAppImportErrorOnHUPKeepsOld(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "hupapp.py")
	os.WriteFile(path, []byte(fmt.Sprintf(hupApp, "good")), 0o644)
	port := mustFreePort(t)
	m := startMaster(t, "", appConfig(port, "sync", "hupapp:app", dir, ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitBody(t, url, "good")
	os.WriteFile(path, []byte("import no_such_dependency\n"), 0o644)
	m.signal(syscall.SIGHUP)
	m.waitLog(`"msg":"reload failed; keeping the running config"`, 1, 30*time.Second)
	log := m.log.String()
	for _, want := range []string{`\"module\":\"hupapp\"`, "No module named 'no_such_dependency'", debianPython} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	waitBody(t, url, "good")
}

// TestAppRollingRestart: hfork -s restart LISTENER replaces each worker in
// turn, its replacement ready first, with no failed request.
func TestAppRollingRestart(t *testing.T) {
	skipShort(t)
	needPython(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hupapp.py"), []byte(fmt.Sprintf(hupApp, "v1")), 0o644)
	port := mustFreePort(t)
	m := startMaster(t, "", appConfig(port, "thread", "hupapp:app", dir, ""))
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "v1")
	m.waitLog(`"msg":"worker ready"`, 2, 20*time.Second)
	before := m.workerPids("py")
	l := loadOn(t, port)
	out, err := engine.ControlRestart(engine.ControlPath(filepath.Join(m.dir, "hfork.pid")), "py")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `restart  listener "py": 2 workers, one at a time`) {
		t.Errorf("answer %q", out)
	}
	m.waitLog(`"reason":"restart; replacement ready"`, 2, 30*time.Second)
	l.requireNoFailures(t, "across a rolling restart")
	after := m.waitWorkers("py", 2)
	for _, pid := range after {
		if contains(before, pid) {
			t.Errorf("worker %d survived the restart (before %v, after %v)", pid, before, after)
		}
	}
	if _, err := engine.ControlRestart(engine.ControlPath(filepath.Join(m.dir, "hfork.pid")), "nope"); err == nil || !strings.Contains(err.Error(), `no listener "nope"`) {
		t.Errorf("restart of an unknown listener: %v", err)
	}
}
