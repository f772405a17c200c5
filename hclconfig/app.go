package hclconfig

import (
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Classes that only run a Python app (app = "module:callable"); sync and
// thread run one too when app is set.
const (
	ClassGevent   = "gevent"
	ClassEventlet = "eventlet"
	ClassTornado  = "tornado"
	ClassAiohttp  = "aiohttp"
	ClassASGI     = "asgi"
)

// DefaultPython is the interpreter an app listener runs when python is not
// set, looked up on PATH.
const DefaultPython = "python3"

var (
	appClasses    = []string{ClassSync, ClassThread, ClassGevent, ClassEventlet, ClassTornado, ClassAiohttp, ClassASGI}
	pythonClasses = []string{ClassGevent, ClassEventlet, ClassTornado, ClassAiohttp, ClassASGI}
)

// ValidName reports whether s can name a listener.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// IsAppClass reports whether class runs a Python app only.
func IsAppClass(class string) bool { return contains(pythonClasses, class) }

// appHonours names, per class, the optional settings its Python workers
// honour beyond those every class does (workers, the timeouts, max_requests,
// access_log, app, python, env, pass_env, inherit_env, dir, user, group,
// socket_*). Any other one
// set on an app listener is an error: silently ignoring it would let a
// gunicorn setting carried over do nothing.
var appHonours = map[string][]string{
	ClassSync:     {"max_header_bytes", "max_body_bytes", "read_header_timeout"},
	ClassThread:   {"threads", "worker_connections", "keepalive", "max_header_bytes", "max_body_bytes", "read_header_timeout"},
	ClassGevent:   {"worker_connections", "keepalive", "max_header_bytes", "max_body_bytes", "read_header_timeout"},
	ClassEventlet: {"worker_connections", "keepalive", "max_header_bytes", "max_body_bytes", "read_header_timeout"},
	ClassTornado:  {"keepalive", "max_header_bytes", "max_body_bytes"},
	ClassAiohttp:  {"keepalive", "max_body_bytes"},
	ClassASGI:     {"worker_connections", "keepalive"},
}

// appNever are listener settings no app class has: what a Python worker
// serves is the app's, and TLS belongs in front of it.
var appNever = map[string]string{
	"command":        "an app listener runs hfork's Python runner; command belongs to class \"exec\"",
	"ready":          "hfork's runner says READY=1 once the app is imported",
	"stop_signal":    "hfork's runner drains on SIGTERM",
	"event_loop":     "the event loop serves built-in routes, not a Python app",
	"redirect_https": "the app answers every request; let it redirect, or put a built-in listener in front",
	"https_port":     "the app answers every request; let it redirect, or put a built-in listener in front",
	"read_timeout":   "the Python classes bound the request head (read_header_timeout), not the whole read",
	"write_timeout":  "the Python classes do not bound writes",
	// The runner closes what is left of a drain at graceful_timeout and
	// the master cannot see its transfers, as for exec.
	"shutdown_timeout": "the Python classes close what a drain left at graceful_timeout; shutdown_timeout bounds the built-in classes' drains",
}

// appOptional are the settings appHonours may list, with how to zero them
// in the Config when the class does not use them.
var appOptional = []string{"threads", "worker_connections", "keepalive", "max_header_bytes", "max_body_bytes", "read_header_timeout"}

// pyApp decodes the Python side of a listener with app set, and checks that
// every setting given is one its class honours.
func (d *decoder) pyApp(attrs hcl.Attributes, b *hcl.Block, l *Listener, classSet bool, tlsAt *hcl.Range, routes, hosts []*hcl.Block) {
	if !classSet {
		l.Class = ClassSync // gunicorn's default worker
		l.Threads = 0
	}
	if !contains(appClasses, l.Class) {
		d.errorf(attrs["class"].Expr.Range(), "Class "+quote(l.Class)+" cannot run an app", "app runs a Python callable under one of the classes %s; class %q serves built-in routes.", orList(appClasses), l.Class)
		return
	}
	if d.str(attrs, "app", &l.App) {
		mod, obj, _ := strings.Cut(l.App, ":")
		if mod == "" || strings.ContainsAny(mod, " /") || (strings.Contains(l.App, ":") && strings.TrimSpace(obj) == "") {
			d.errorf(attrs["app"].Expr.Range(), "Invalid app", "%q is not an app: use \"module:callable\" (like \"myapp:app\"), \"module\" for its `application`, or a factory call like \"myapp:create_app()\".", l.App)
		}
	}
	l.Python = DefaultPython
	if d.str(attrs, "python", &l.Python) {
		switch {
		case l.Python == "":
			d.errorf(attrs["python"].Expr.Range(), "Empty python", "python names the interpreter, like \"python3\" or a virtualenv's \"venv/bin/python\".")
		case strings.Contains(l.Python, "/"):
			l.Python = d.path(l.Python)
		}
	}
	l.Dir = d.dir
	d.env(attrs, l)
	if d.str(attrs, "dir", &l.Dir) {
		l.Dir = d.path(l.Dir)
		d.checkDir(attrs["dir"].Expr.Range(), "dir", l.Dir)
	}
	for _, name := range sortedKeys(appNever) {
		if a, set := attrs[name]; set {
			d.errorf(a.Range, "Argument "+quote(name)+" on an app listener", "%s.", capitalize(appNever[name]))
		}
	}
	honours := appHonours[l.Class]
	for _, name := range appOptional {
		if contains(honours, name) {
			continue
		}
		if a, set := attrs[name]; set && name != "threads" {
			d.errorf(a.Range, "Argument "+quote(name)+" on "+article(l.Class)+" app listener", "The %s class cannot honour %s; remove it (it may use %s).", l.Class, name, orList(honours))
		}
	}
	l.EventLoop, l.ReadTimeout, l.WriteTimeout = false, 0, 0
	l.ShutdownTimeout = l.GracefulTimeout
	if !contains(honours, "threads") {
		l.Threads = 0
	}
	if !contains(honours, "worker_connections") {
		l.WorkerConnections = 0
	}
	if !contains(honours, "keepalive") {
		l.Keepalive = 0
	}
	if !contains(honours, "max_header_bytes") {
		l.MaxHeaderBytes = 0
	}
	if !contains(honours, "max_body_bytes") {
		l.MaxBodyBytes = 0
	}
	if !contains(honours, "read_header_timeout") {
		l.ReadHeaderTimeout = 0
	}
	if tlsAt != nil {
		d.errorf(*tlsAt, "TLS on an app listener", "Put the app behind a built-in listener that terminates TLS and proxies to it (bind the app to a unix socket), as gunicorn sits behind nginx.")
		l.TLS = TLS{}
	}
	for _, r := range routes {
		d.errorf(r.DefRange, "Route on an app listener", "The app serves every request of its listener; remove the route, or move it to a built-in listener that proxies to this one.")
	}
	for _, h := range hosts {
		d.errorf(h.DefRange, "Host on an app listener", "The app serves every request of its listener, whatever its Host; route by host in the app, or put the host on a built-in listener that proxies to this one.")
	}
	l.Hosts = nil
}

// formatApp prints an app listener's settings, only those its class uses.
func formatApp(b *body, l Listener, c Config) {
	b.attr("bind", listHCL(l.Bind))
	b.attr("class", quoteHCL(l.Class))
	b.attr("app", quoteHCL(l.App))
	b.attr("python", quoteHCL(l.Python))
	b.attr("workers", intHCL(l.Workers))
	honours := appHonours[l.Class]
	if contains(honours, "threads") {
		b.attr("threads", intHCL(l.Threads))
	}
	if contains(honours, "worker_connections") {
		b.attr("worker_connections", intHCL(l.WorkerConnections))
	}
	b.attr("timeout", durationHCL(l.Timeout))
	b.attr("graceful_timeout", durationHCL(l.GracefulTimeout))
	b.attr("boot_timeout", durationHCL(l.BootTimeout))
	if contains(honours, "keepalive") {
		b.attr("keepalive", durationHCL(l.Keepalive))
	}
	b.attr("max_requests", intHCL(l.MaxRequests))
	b.attr("max_requests_jitter", intHCL(l.MaxRequestsJitter))
	if contains(honours, "max_header_bytes") {
		b.attr("max_header_bytes", sizeHCL(int64(l.MaxHeaderBytes)))
	}
	if contains(honours, "max_body_bytes") {
		b.attr("max_body_bytes", sizeHCL(l.MaxBodyBytes))
	}
	if contains(honours, "read_header_timeout") {
		b.attr("read_header_timeout", durationHCL(l.ReadHeaderTimeout))
	}
	if l.User != "" || c.User != "" {
		b.attr("user", quoteHCL(l.User))
	}
	if l.Group != "" || c.Group != "" {
		b.attr("group", quoteHCL(l.Group))
	}
	if l.SocketMode != "" {
		b.attr("socket_mode", quoteHCL(l.SocketMode))
	}
	if l.SocketOwner != "" {
		b.attr("socket_owner", quoteHCL(l.SocketOwner))
	}
	if l.SocketGroup != "" {
		b.attr("socket_group", quoteHCL(l.SocketGroup))
	}
	b.attr("env", mapHCL(l.Env))
	b.attr("pass_env", listHCL(l.PassEnv))
	b.attr("inherit_env", strconv.FormatBool(l.InheritEnv))
	b.attr("dir", quoteHCL(l.Dir))
	if l.AccessLog.File != "" {
		b.blank()
		ab := b.block("access_log")
		ab.attr("file", quoteHCL(l.AccessLog.File))
		ab.attr("format", quoteHCL(l.AccessLog.Format))
	}
}
