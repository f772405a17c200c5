package hclconfig

import (
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var listenerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "bind", Required: true},
		{Name: "class"},
		{Name: "workers"},
		{Name: "threads"},
		{Name: "worker_connections"},
		{Name: "timeout"},
		{Name: "graceful_timeout"},
		{Name: "shutdown_timeout"},
		{Name: "boot_timeout"},
		{Name: "keepalive"},
		{Name: "max_requests"},
		{Name: "max_requests_jitter"},
		{Name: "command"},
		{Name: "env"},
		{Name: "pass_env"},
		{Name: "inherit_env"},
		{Name: "dir"},
		{Name: "ready"},
		{Name: "stop_signal"},
		{Name: "app"},
		{Name: "python"},
		{Name: "max_header_bytes"},
		{Name: "max_body_bytes"},
		{Name: "read_header_timeout"},
		{Name: "read_timeout"},
		{Name: "write_timeout"},
		{Name: "max_connections_per_ip"},
		{Name: "underscores_in_headers"},
		{Name: "idle_timeout"},
		{Name: "max_connections"},
		{Name: "redirect_https"},
		{Name: "https_port"},
		{Name: "event_loop"},
		{Name: "user"},
		{Name: "group"},
		{Name: "socket_mode"},
		{Name: "socket_owner"},
		{Name: "socket_group"},
		{Name: "trusted_proxies"},
		{Name: "proxy_protocol"},
		{Name: "error_pages"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "tls"},
		{Type: "access_log"},
		{Type: "route", LabelNames: []string{"prefix"}},
		{Type: "host", LabelNames: []string{"label"}},
		{Type: "headers"},
		{Type: "compress"},
	},
}

var accessLogSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "file", Required: true}, {Name: "format"}},
}

var (
	classes          = []string{ClassSync, ClassThread, ClassAsync, ClassExec, ClassGevent, ClassEventlet, ClassTornado, ClassAiohttp, ClassASGI}
	accessLogFormats = []string{"combined", "json"}
	readyModes       = []string{"notify", "started"}
	stopSignals      = []string{"TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "WINCH"}
	execOnly         = []string{"command", "env", "pass_env", "inherit_env", "dir", "ready", "stop_signal"}
	notOnExec        = []string{"trusted_proxies", "proxy_protocol"}
)

// listener decodes one listener block and returns its binds for the
// file-wide address check.
func (d *decoder) listener(b *hcl.Block) (Listener, []boundAddr) {
	l := Listener{
		Name:              b.Labels[0],
		Class:             ClassAsync,
		Workers:           numCPU(),
		WorkerConnections: 1000,
		Timeout:           30 * time.Second,
		GracefulTimeout:   30 * time.Second,
		ShutdownTimeout:   defaultShutdownTimeout,
		BootTimeout:       30 * time.Second,
		Keepalive:         5 * time.Second,
		MaxHeaderBytes:    defaultMaxHeaderBytes,
		MaxBodyBytes:      defaultMaxBodyBytes,
		ReadHeaderTimeout: defaultReadHeaderTimeout,
		WriteTimeout:      defaultWriteTimeout,
		EventLoop:         true,
		User:              d.user,
		Group:             d.group,
	}
	if !namePattern.MatchString(l.Name) {
		d.errorf(b.LabelRanges[0], "Invalid listener name", "%q cannot name a listener: use letters, digits, '.', '-' and '_', starting with a letter or digit (the name travels in LISTEN_FDNAMES and in logs).", l.Name)
	}
	content, unknown := d.content(b.Body, listenerSchema)
	attrs := content.Attributes

	var binds []boundAddr
	unixBinds := 0
	if list, rngs, ok := d.strList(attrs, "bind", true); ok {
		if len(list) == 0 {
			d.errorf(attrs["bind"].Expr.Range(), "No bind address", "bind needs at least one address, like \":8080\" or \"unix:/run/hfork/web.sock\".")
		}
		for i, s := range list {
			ba, err := parseBind(s, d.dir)
			if err != nil {
				d.errorf(rngs[i], "Invalid bind address", "%s.", capitalize(err.Error()))
				continue
			}
			l.Bind = append(l.Bind, ba.addr)
			if ba.unix {
				unixBinds++
			}
			binds = append(binds, boundAddr{bindAddr: ba, listener: l.Name, rng: rngs[i]})
		}
	}

	classOK := true
	_, classSet := attrs["class"]
	if classSet {
		classOK = d.enum(attrs, "class", classes, &l.Class)
	}
	_, isApp := attrs["app"]
	if isApp && !classSet {
		l.Class = ClassSync
	}

	if d.integer(attrs, "workers", &l.Workers) && l.Workers < 1 {
		d.errorf(attrs["workers"].Expr.Range(), "Invalid workers", "workers is %d; a listener needs at least 1 worker.", l.Workers)
	}
	if l.Class == ClassThread {
		l.Threads = 8
	}
	if d.integer(attrs, "threads", &l.Threads) {
		switch {
		case classOK && l.Class != ClassThread:
			d.errorf(attrs["threads"].Range, "Argument \"threads\" on "+article(l.Class)+" listener", "threads applies only to class %q; remove it, or set class = %q.", ClassThread, ClassThread)
		case l.Threads < 1:
			d.errorf(attrs["threads"].Expr.Range(), "Invalid threads", "threads is %d; a thread worker needs at least 1 thread.", l.Threads)
		}
	}
	if d.integer(attrs, "worker_connections", &l.WorkerConnections) && l.WorkerConnections < 1 {
		d.errorf(attrs["worker_connections"].Expr.Range(), "Invalid worker_connections", "worker_connections is %d; a worker needs room for at least 1 connection.", l.WorkerConnections)
	}
	d.duration(attrs, "timeout", &l.Timeout)
	d.duration(attrs, "graceful_timeout", &l.GracefulTimeout)
	if a, set := attrs["shutdown_timeout"]; set {
		if d.duration(attrs, "shutdown_timeout", &l.ShutdownTimeout) && l.ShutdownTimeout < l.GracefulTimeout {
			d.errorf(a.Expr.Range(), "Invalid shutdown_timeout", "shutdown_timeout is %s, shorter than graceful_timeout (%s); it bounds the transfers a drain lets run past graceful_timeout, so it must be at least as long.", l.ShutdownTimeout, l.GracefulTimeout)
		}
	} else {
		l.ShutdownTimeout = max(l.ShutdownTimeout, l.GracefulTimeout)
	}
	if d.duration(attrs, "boot_timeout", &l.BootTimeout) && l.BootTimeout == 0 {
		d.errorf(attrs["boot_timeout"].Expr.Range(), "Invalid boot_timeout", "boot_timeout must be more than zero: a replacement is only trusted once its workers are ready within it.")
	}
	d.duration(attrs, "keepalive", &l.Keepalive)
	d.boolean(attrs, "event_loop", &l.EventLoop)
	if d.integer(attrs, "max_requests", &l.MaxRequests) && l.MaxRequests < 0 {
		d.errorf(attrs["max_requests"].Expr.Range(), "Invalid max_requests", "max_requests is %d; use 0 (never recycle a worker) or more.", l.MaxRequests)
	}
	if d.integer(attrs, "max_requests_jitter", &l.MaxRequestsJitter) && l.MaxRequestsJitter < 0 {
		d.errorf(attrs["max_requests_jitter"].Expr.Range(), "Invalid max_requests_jitter", "max_requests_jitter is %d; use 0 (no jitter) or more.", l.MaxRequestsJitter)
	}

	d.limits(attrs, &l)
	d.redirectHTTPS(attrs, &l, unknown)
	d.identity(attrs, "user", "user", &l.User)
	d.identity(attrs, "group", "group", &l.Group)
	d.socketPerms(attrs, unixBinds, &l)
	d.clientAddress(attrs, &l)

	var routeBlocks, hostBlocks []*hcl.Block
	var accessAt, tlsAt *hcl.Range
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "tls":
			if tlsAt != nil {
				d.errorf(blk.DefRange, "Duplicate tls block", "A tls block is already declared at %s; there can be only one (add certificate { } blocks inside it for more certificates).", at(*tlsAt))
				continue
			}
			tlsAt = blk.DefRange.Ptr()
			l.TLS = d.tls(blk)
		case "access_log":
			if accessAt != nil {
				d.errorf(blk.DefRange, "Duplicate access_log block", "An access_log block is already declared at %s; there can be only one.", at(*accessAt))
				continue
			}
			accessAt = blk.DefRange.Ptr()
			l.AccessLog = d.accessLog(blk.Body)
		case "route":
			routeBlocks = append(routeBlocks, blk)
		case "host":
			hostBlocks = append(hostBlocks, blk)
		}
	}
	l.Routes = d.routes(routeBlocks)
	l.Hosts = d.hosts(hostBlocks)
	l.Headers = d.headersBlock(content.Blocks, "listener")
	l.Compress = d.compressBlock(content.Blocks, "listener")
	if l.Class != ClassExec {
		l.ErrorPages = d.errorPages(attrs)
	}

	switch {
	case isApp && classOK:
		d.pyApp(attrs, b, &l, classSet, tlsAt, routeBlocks, hostBlocks)
		return l, binds
	case IsAppClass(l.Class):
		d.errorf(attrs["class"].Expr.Range(), "Class "+quote(l.Class)+" without an app", `The %s class runs a Python app; add app = "module:callable" (like "myapp:app").`, l.Class)
		return l, binds
	case l.Class == ClassExec:
		d.exec(attrs, b, &l, unknown)
		noPython(d, attrs)
	default:
		noPython(d, attrs)
		for _, name := range execOnly {
			if a, set := attrs[name]; set && classOK {
				d.errorf(a.Range, "Argument "+quote(name)+" on "+article(l.Class)+" listener", "%s applies only to class %q, which runs a program as the worker; the %s class serves its routes itself.", name, ClassExec, l.Class)
			}
		}
	}
	if !classOK {
		return l, binds
	}
	if l.RedirectHTTPS {
		for _, h := range hostBlocks {
			d.errorf(h.DefRange, "Host on a redirect_https listener", "redirect_https redirects every request the listener's own routes do not match, whatever its Host; put the hosts on the HTTPS listener.")
		}
	}
	if tlsAt != nil && l.RedirectHTTPS {
		d.errorf(attrs["redirect_https"].Range, "redirect_https on a TLS listener", "This listener already serves HTTPS; redirect_https belongs on the plain-HTTP listener that sends clients here.")
	}
	switch l.Class {
	case ClassExec:
		if tlsAt != nil {
			d.errorf(*tlsAt, "TLS on an exec listener", "An exec worker gets the raw socket and speaks to the client itself, so hfork cannot terminate TLS for it; let the program do TLS, or use class %q, %q or %q.", ClassSync, ClassThread, ClassAsync)
		}
		if a, set := attrs["redirect_https"]; set {
			d.errorf(a.Range, "redirect_https on an exec listener", "The program given in command answers every request of an exec listener; let it redirect.")
		}
		for _, h := range hostBlocks {
			d.errorf(h.DefRange, "Host on an exec listener", "The program given in command serves every request of an exec listener, whatever its Host; remove the host, or use class %q, %q or %q.", ClassSync, ClassThread, ClassAsync)
		}
		for _, r := range routeBlocks {
			d.errorf(r.DefRange, "Route on an exec listener", "The program given in command serves every request of an exec listener; remove the route, or use class %q, %q or %q.", ClassSync, ClassThread, ClassAsync)
		}
		for _, name := range notOnExec {
			if a, set := attrs[name]; set {
				d.errorf(a.Range, "Argument "+quote(name)+" on an exec listener", "The program given in command reads its connections itself, so hfork cannot take the client's address for it; let the program do it.")
			}
		}
		if accessAt != nil {
			d.errorf(*accessAt, "Access log on an exec listener", "hfork does not see the requests an exec worker serves, so it cannot log them; let the program log them.")
		}
		// The program serves its connections itself: hfork cannot enforce
		// any of these for it, so setting one is an error, not a no-op.
		execCannot(d, attrs, "keepalive", &l.Keepalive, 5*time.Second)
		execCannot(d, attrs, "event_loop", &l.EventLoop, false)
		execCannot(d, attrs, "worker_connections", &l.WorkerConnections, 1000)
		execCannot(d, attrs, "max_header_bytes", &l.MaxHeaderBytes, defaultMaxHeaderBytes)
		execCannot(d, attrs, "max_body_bytes", &l.MaxBodyBytes, defaultMaxBodyBytes)
		execCannot(d, attrs, "read_header_timeout", &l.ReadHeaderTimeout, defaultReadHeaderTimeout)
		execCannot(d, attrs, "read_timeout", &l.ReadTimeout, 0)
		execCannot(d, attrs, "write_timeout", &l.WriteTimeout, 0)
		execCannot(d, attrs, "max_requests", &l.MaxRequests, 0)
		execCannot(d, attrs, "max_requests_jitter", &l.MaxRequestsJitter, 0)
		execCannot(d, attrs, "max_connections_per_ip", &l.MaxConnsPerIP, 0)
		execCannot(d, attrs, "underscores_in_headers", &l.UnderscoresInHeaders, false)
		// The master stops an exec worker at graceful_timeout: it cannot
		// see the program's transfers.
		noEffect(d, attrs, "shutdown_timeout", l.Class, &l.ShutdownTimeout, l.GracefulTimeout)
	case ClassSync:
		// a sync worker closes each connection after its response
		noEffect(d, attrs, "keepalive", l.Class, &l.Keepalive, 0)
		noEffect(d, attrs, "worker_connections", l.Class, &l.WorkerConnections, 1000)
		fallthrough
	default:
		if l.Class != ClassAsync {
			noEffect(d, attrs, "event_loop", l.Class, &l.EventLoop, false)
		}
		if l.RedirectHTTPS {
			for _, r := range routeBlocks {
				if r.Labels[0] == "/" {
					d.errorf(r.LabelRanges[0], "Route \"/\" on a redirect_https listener", "redirect_https redirects the requests no route matches, and \"/\" matches them all; keep only the routes to serve over plain HTTP (like \"/.well-known/acme-challenge/\"), or remove redirect_https.")
				}
			}
		} else if len(routeBlocks) == 0 && len(hostBlocks) == 0 && !unknown {
			d.errorf(b.DefRange, "Listener "+quote(l.Name)+" has no route", `%s listener serves requests through its routes; add at least one, like route "/" { respond { body = "hello\n" } }.`, capitalize(article(l.Class)))
		}
	}
	return l, binds
}

// execCannot rejects a setting on an exec listener: hfork does not see
// the requests an exec program serves, so it cannot honour it.
func execCannot[T comparable](d *decoder, attrs hcl.Attributes, name string, dst *T, def T) {
	if a, set := attrs[name]; set {
		d.errorf(a.Range, "Argument "+quote(name)+" on an exec listener", "hfork does not see the requests an exec program serves, so it cannot honour %s; remove it, and set it in the program itself.", name)
	}
	*dst = def
}

// noPython rejects python on a listener that runs no app.
func noPython(d *decoder, attrs hcl.Attributes) {
	if a, set := attrs["python"]; set {
		d.errorf(a.Range, "Argument \"python\" without app", `python is the interpreter of an app listener; add app = "module:callable", or remove python.`)
	}
}

// noEffect warns about an argument the class ignores and puts back the
// default, so the effective config shows what the workers really use.
func noEffect[T comparable](d *decoder, attrs hcl.Attributes, name, class string, dst *T, def T) {
	if a, set := attrs[name]; set && *dst != def {
		d.warnf(a.Range, "Argument "+quote(name)+" has no effect on "+article(class)+" listener", "The %s class does not use %s, so the value is ignored.", class, name)
	}
	*dst = def
}

func (d *decoder) accessLog(body hcl.Body) AccessLog {
	a := AccessLog{Format: "combined"}
	content, _ := d.content(body, accessLogSchema)
	if d.str(content.Attributes, "file", &a.File) {
		switch a.File {
		case "":
			d.errorf(content.Attributes["file"].Expr.Range(), "Empty access_log file", `Give a path, or "-" for standard output; remove the access_log block to turn the log off.`)
		case "-":
		default:
			a.File = d.path(a.File)
		}
	}
	d.enum(content.Attributes, "format", accessLogFormats, &a.Format)
	return a
}

// env decodes what a program's environment gets (env, pass_env,
// inherit_env): an exec listener's and an app listener's.
func (d *decoder) env(attrs hcl.Attributes, l *Listener) {
	if env, ok := d.strMap(attrs, "env"); ok {
		for k := range env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				d.errorf(attrs["env"].Expr.Range(), "Invalid environment variable name", "%q cannot name an environment variable.", k)
			}
		}
		if len(env) > 0 {
			l.Env = env
		}
	}
	if names, rngs, ok := d.strList(attrs, "pass_env", false); ok {
		for i, k := range names {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				d.errorf(rngs[i], "Invalid environment variable name", "%q cannot name an environment variable.", k)
			}
		}
		if len(names) > 0 {
			l.PassEnv = names
		}
	}
	d.boolean(attrs, "inherit_env", &l.InheritEnv)
}

// exec decodes the arguments of an exec listener.
func (d *decoder) exec(attrs hcl.Attributes, b *hcl.Block, l *Listener, unknown bool) {
	l.Dir = d.dir
	l.Ready = "notify"
	l.StopSignal = "TERM"
	if cmd, rngs, ok := d.strList(attrs, "command", false); ok {
		switch {
		case len(cmd) == 0:
			d.errorf(attrs["command"].Expr.Range(), "Empty command", `command needs at least the program to run, like ["python3", "app.py"].`)
		case cmd[0] == "":
			d.errorf(rngs[0], "Empty command", "The first element of command names the program to run; it is empty.")
		default:
			l.Command = cmd
		}
	} else if _, set := attrs["command"]; !set && !unknown {
		d.errorf(b.DefRange, "Exec listener "+quote(l.Name)+" has no command", `An exec listener runs a program as each worker; add command = ["program", "arg", ...].`)
	}
	d.env(attrs, l)
	if d.str(attrs, "dir", &l.Dir) {
		l.Dir = d.path(l.Dir)
		d.checkDir(attrs["dir"].Expr.Range(), "dir", l.Dir)
	}
	d.enum(attrs, "ready", readyModes, &l.Ready)
	var sig string
	if d.str(attrs, "stop_signal", &sig) {
		norm := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
		if !contains(stopSignals, norm) {
			d.errorf(attrs["stop_signal"].Expr.Range(), "Invalid stop_signal", "%q is not a stop signal hfork sends; use one of %s (with or without \"SIG\").", sig, orList(stopSignals))
		} else {
			l.StopSignal = norm
		}
	}
}
