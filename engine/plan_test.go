package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

func lst(name string, mod ...func(*hclconfig.Listener)) hclconfig.Listener {
	l := hclconfig.Listener{
		Name: name, Bind: []string{"127.0.0.1:8080"}, Class: "async", Workers: 2,
		WorkerConnections: 1000, Timeout: 30 * time.Second, GracefulTimeout: 30 * time.Second,
		BootTimeout: 30 * time.Second, Keepalive: 5 * time.Second,
		Routes: []hclconfig.Route{{Prefix: "/", App: "respond", Respond: hclconfig.Respond{Status: 200, Body: "a"}}},
	}
	for _, f := range mod {
		f(&l)
	}
	return l
}

func cfg(ls ...hclconfig.Listener) hclconfig.Config {
	return hclconfig.Config{Log: hclconfig.Log{Level: "info", Format: "auto"}, Reload: hclconfig.Reload{Watch: true, Debounce: 250 * time.Millisecond}, Listeners: ls}
}

func TestPlan(t *testing.T) {
	body := func(s string) func(*hclconfig.Listener) {
		return func(l *hclconfig.Listener) { l.Routes[0].Respond.Body = s }
	}
	workers := func(n int) func(*hclconfig.Listener) { return func(l *hclconfig.Listener) { l.Workers = n } }
	bind := func(b ...string) func(*hclconfig.Listener) { return func(l *hclconfig.Listener) { l.Bind = b } }
	tests := []struct {
		name     string
		old, new hclconfig.Config
		want     []string // "listener:action"
		fields   map[string][]string
		empty    bool
	}{
		{name: "identical", old: cfg(lst("a")), new: cfg(lst("a")), want: []string{"a:keep"}, empty: true},
		{name: "new listener", old: cfg(lst("a")), new: cfg(lst("a"), lst("b", bind(":9"))), want: []string{"a:keep", "b:start"}},
		{name: "removed listener", old: cfg(lst("a"), lst("b", bind(":9"))), new: cfg(lst("a")), want: []string{"a:keep", "b:stop"}},
		{name: "workers only", old: cfg(lst("a")), new: cfg(lst("a", workers(5))), want: []string{"a:scale"}},
		{name: "body", old: cfg(lst("a")), new: cfg(lst("a", body("b"))), want: []string{"a:swap"}, fields: map[string][]string{"a": {"routes"}}},
		{name: "body and workers", old: cfg(lst("a")), new: cfg(lst("a", body("b"), workers(3))), want: []string{"a:swap"}, fields: map[string][]string{"a": {"routes", "workers"}}},
		{name: "bind", old: cfg(lst("a")), new: cfg(lst("a", bind("127.0.0.1:9090"))), want: []string{"a:rebind"}},
		{name: "bind order only", old: cfg(lst("a", bind("x:1", "y:2"))), new: cfg(lst("a", bind("y:2", "x:1"))), want: []string{"a:replace"}},
		{name: "only B changes", old: cfg(lst("a"), lst("b", bind(":9"))), new: cfg(lst("a"), lst("b", bind(":9"), body("z"))), want: []string{"a:keep", "b:swap"}},
		{name: "body of an exec listener", old: cfg(lst("a", func(l *hclconfig.Listener) { l.Class = "exec" })), new: cfg(lst("a", body("b"), func(l *hclconfig.Listener) { l.Class = "exec" })), want: []string{"a:replace"}},
		{name: "body and timeout", old: cfg(lst("a")), new: cfg(lst("a", body("b"), func(l *hclconfig.Listener) { l.Timeout = time.Minute })), want: []string{"a:replace"}, fields: map[string][]string{"a": {"routes", "timeout"}}},
		{name: "class", old: cfg(lst("a")), new: cfg(lst("a", func(l *hclconfig.Listener) { l.Class = "sync" })), want: []string{"a:replace"}, fields: map[string][]string{"a": {"class"}}},
		{name: "rename is stop and start", old: cfg(lst("a")), new: cfg(lst("z")), want: []string{"z:start", "a:stop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.old, tt.new, PlanOptions{})
			var acts []string
			for _, ch := range got.Listeners {
				acts = append(acts, ch.Listener+":"+ch.Action.String())
				if want, ok := tt.fields[ch.Listener]; ok && !slices.Equal(ch.Fields, want) {
					t.Errorf("%s fields = %v, want %v", ch.Listener, ch.Fields, want)
				}
			}
			if !slices.Equal(acts, tt.want) {
				t.Errorf("plan = %v, want %v", acts, tt.want)
			}
			// Plan and Fingerprint agree on what a worker sees: workers are
			// touched exactly when the fingerprint changes.
			for _, ch := range got.Listeners {
				if ch.Action == Start || ch.Action == Stop {
					continue
				}
				untouched := ch.Action == Keep || ch.Action == Scale
				if same := ch.Old.Fingerprint() == ch.New.Fingerprint(); untouched != same {
					t.Errorf("%s: action %s, but fingerprints equal = %v", ch.Listener, ch.Action, same)
				}
			}
			if got.Empty() != tt.empty {
				t.Errorf("Empty() = %v, want %v", got.Empty(), tt.empty)
			}
		})
	}
}

func TestPlanGlobals(t *testing.T) {
	old := cfg(lst("a"))
	nw := cfg(lst("a"))
	nw.Log.Level = "debug"
	p := Plan(old, nw, PlanOptions{})
	if !p.Log || p.Reload || p.Empty() {
		t.Fatalf("log change: %+v", p)
	}
	if !strings.Contains(p.String(), "log settings") {
		t.Errorf("plan text lacks the log change:\n%s", p)
	}
	nw = cfg(lst("a"))
	nw.Reload.Debounce = time.Second
	if p := Plan(old, nw, PlanOptions{}); !p.Reload || p.Log {
		t.Fatalf("reload change: %+v", p)
	}
}

func TestPlanString(t *testing.T) {
	p := Plan(cfg(lst("a"), lst("b", func(l *hclconfig.Listener) { l.Bind = []string{":9"} })),
		cfg(lst("a", func(l *hclconfig.Listener) { l.Workers = 4 }), lst("c", func(l *hclconfig.Listener) { l.Bind = []string{":7"} })), PlanOptions{})
	s := p.String()
	for _, want := range []string{`scale    listener "a": workers 2 -> 4`, `start    listener "c"`, `stop     listener "b"`} {
		if !strings.Contains(s, want) {
			t.Errorf("plan text lacks %q:\n%s", want, s)
		}
	}
}

// TestPlanRestartCode: a manual reload (RestartCode) replaces the listeners
// that run user code even when nothing changed; built-in ones keep; a file
// watch's reload (no RestartCode) replaces only what changed.
func TestPlanRestartCode(t *testing.T) {
	app := func(l *hclconfig.Listener) { l.App, l.Class, l.Routes = "myapp:app", "gevent", nil }
	exe := func(l *hclconfig.Listener) { l.Class, l.Command, l.Routes = "exec", []string{"./srv"}, nil }
	workers := func(n int) func(*hclconfig.Listener) { return func(l *hclconfig.Listener) { l.Workers = n } }
	bind := func(b string) func(*hclconfig.Listener) { return func(l *hclconfig.Listener) { l.Bind = []string{b} } }
	tests := []struct {
		name     string
		old, new hclconfig.Config
		restart  bool
		want     []string
		text     string
	}{
		{name: "hup restarts an unchanged app", old: cfg(lst("a", app)), new: cfg(lst("a", app)), restart: true,
			want: []string{"a:replace"}, text: `replace  listener "a": restarts its code`},
		{name: "file watch keeps an unchanged app", old: cfg(lst("a", app)), new: cfg(lst("a", app)),
			want: []string{"a:keep"}},
		{name: "hup restarts an unchanged exec", old: cfg(lst("e", exe)), new: cfg(lst("e", exe)), restart: true,
			want: []string{"e:replace"}},
		{name: "hup keeps built-in routes", old: cfg(lst("w"), lst("a", app, bind(":9"))), new: cfg(lst("w"), lst("a", app, bind(":9"))), restart: true,
			want: []string{"w:keep", "a:replace"}},
		{name: "hup with workers changed replaces instead of scaling", old: cfg(lst("a", app)), new: cfg(lst("a", app, workers(5))), restart: true,
			want: []string{"a:replace"}, text: `replace  listener "a": workers changed; restarts its code`},
		{name: "file watch scales an app", old: cfg(lst("a", app)), new: cfg(lst("a", app, workers(5))),
			want: []string{"a:scale"}},
		{name: "hup with a new bind rebinds", old: cfg(lst("a", app)), new: cfg(lst("a", app, bind(":7"))), restart: true,
			want: []string{"a:rebind"}},
		{name: "hup with a changed app replaces once", old: cfg(lst("a", app)), new: cfg(lst("a", app, func(l *hclconfig.Listener) { l.App = "other:app" })), restart: true,
			want: []string{"a:replace"}, text: `replace  listener "a": app changed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.old, tt.new, PlanOptions{RestartCode: tt.restart})
			var acts []string
			for _, ch := range got.Listeners {
				acts = append(acts, ch.Listener+":"+ch.Action.String())
			}
			if !slices.Equal(acts, tt.want) {
				t.Errorf("actions = %v, want %v", acts, tt.want)
			}
			if tt.text != "" && !strings.Contains(got.String(), tt.text) {
				t.Errorf("plan text lacks %q:\n%s", tt.text, got.String())
			}
			if empty := got.Empty(); empty != slices.Equal(tt.want, []string{"a:keep"}) {
				t.Errorf("Empty() = %v for %v", empty, acts)
			}
		})
	}
}

// TestPlanSwap: each listener field, changed alone, is either swapped in
// place (what only shapes how a request is answered) or replaces the
// workers (what a running worker cannot take, and every listener that
// runs user code).
func TestPlanSwap(t *testing.T) {
	route := func(f func(*hclconfig.Route)) func(*hclconfig.Listener) {
		return func(l *hclconfig.Listener) { f(&l.Routes[0]) }
	}
	swap := map[string]func(*hclconfig.Listener){
		"routes: new route": func(l *hclconfig.Listener) {
			l.Routes = append(l.Routes, hclconfig.Route{Prefix: "/b/", App: "redirect", Redirect: hclconfig.Redirect{To: "/", Status: 302}})
		},
		"routes: status":         route(func(r *hclconfig.Route) { r.Respond.Status = 201 }),
		"routes: route headers":  route(func(r *hclconfig.Route) { r.Headers.Set = map[string]string{"X": "1"} }),
		"routes: proxy upstream": route(func(r *hclconfig.Route) { r.App, r.Proxy.Upstream = "proxy", []string{"http://127.0.0.1:1"} }),
		"hosts": func(l *hclconfig.Listener) {
			l.Hosts = []hclconfig.Host{{Label: "x", Names: []string{"x.test"}, Routes: l.Routes}}
		},
		"headers":        func(l *hclconfig.Listener) { l.Headers.Remove = []string{"Server"} },
		"error_pages":    func(l *hclconfig.Listener) { l.ErrorPages = map[int]string{404: "/404.html"} },
		"compress":       func(l *hclconfig.Listener) { l.Compress.Level = 9 },
		"access_log":     func(l *hclconfig.Listener) { l.AccessLog = hclconfig.AccessLog{File: "/tmp/a.log", Format: "json"} },
		"max_body_bytes": func(l *hclconfig.Listener) { l.MaxBodyBytes = 1 << 20 },
		"redirect_https": func(l *hclconfig.Listener) { l.RedirectHTTPS, l.HTTPSPort = true, 8443 },
	}
	replace := map[string]func(*hclconfig.Listener){
		"class":                  func(l *hclconfig.Listener) { l.Class = "thread" },
		"threads":                func(l *hclconfig.Listener) { l.Threads = 16 },
		"worker_connections":     func(l *hclconfig.Listener) { l.WorkerConnections = 10 },
		"timeout":                func(l *hclconfig.Listener) { l.Timeout = time.Minute },
		"graceful_timeout":       func(l *hclconfig.Listener) { l.GracefulTimeout = time.Minute },
		"shutdown_timeout":       func(l *hclconfig.Listener) { l.ShutdownTimeout = time.Minute },
		"boot_timeout":           func(l *hclconfig.Listener) { l.BootTimeout = time.Minute },
		"keepalive":              func(l *hclconfig.Listener) { l.Keepalive = time.Minute },
		"max_requests":           func(l *hclconfig.Listener) { l.MaxRequests = 100 },
		"max_requests_jitter":    func(l *hclconfig.Listener) { l.MaxRequestsJitter = 10 },
		"event_loop":             func(l *hclconfig.Listener) { l.EventLoop = !l.EventLoop },
		"max_header_bytes":       func(l *hclconfig.Listener) { l.MaxHeaderBytes = 4096 },
		"read_header_timeout":    func(l *hclconfig.Listener) { l.ReadHeaderTimeout = time.Second },
		"read_timeout":           func(l *hclconfig.Listener) { l.ReadTimeout = time.Second },
		"write_timeout":          func(l *hclconfig.Listener) { l.WriteTimeout = time.Second },
		"max_connections_per_ip": func(l *hclconfig.Listener) { l.MaxConnsPerIP = 3 },
		"underscores_in_headers": func(l *hclconfig.Listener) { l.UnderscoresInHeaders = true },
		"trusted_proxies":        func(l *hclconfig.Listener) { l.TrustedProxies = []string{"10.0.0.0/8"} },
		"proxy_protocol":         func(l *hclconfig.Listener) { l.ProxyProtocol = true },
		"tls":                    func(l *hclconfig.Listener) { l.TLS.Certificates = []hclconfig.Certificate{{Cert: "/c", Key: "/k"}} },
		"user":                   func(l *hclconfig.Listener) { l.User = "nobody" },
		"group":                  func(l *hclconfig.Listener) { l.Group = "nogroup" },
		"socket_mode":            func(l *hclconfig.Listener) { l.SocketMode = "0600" },
	}
	check := func(name string, mod func(*hclconfig.Listener), want Action) {
		t.Helper()
		got := Plan(cfg(lst("a")), cfg(lst("a", mod)), PlanOptions{}).Listeners[0]
		if got.Action != want {
			t.Errorf("%s: %s, want %s (fields %v)", name, got.Action, want, got.Fields)
		}
	}
	for name, mod := range swap {
		check(name, mod, Swap)
		// With another worker count it is still a swap (and a scale at commit).
		check(name+" and workers", func(l *hclconfig.Listener) { mod(l); l.Workers = 7 }, Swap)
		for _, class := range []string{"sync", "thread"} {
			got := Plan(cfg(lst("a", func(l *hclconfig.Listener) { l.Class = class })),
				cfg(lst("a", func(l *hclconfig.Listener) { l.Class = class }, mod)), PlanOptions{}).Listeners[0]
			if got.Action != Swap {
				t.Errorf("%s, class %s: %s, want swap", name, class, got.Action)
			}
		}
		// A listener that runs user code never swaps.
		exe := func(l *hclconfig.Listener) { l.Class, l.Command = "exec", []string{"./srv"} }
		got := Plan(cfg(lst("a", exe)), cfg(lst("a", exe, mod)), PlanOptions{}).Listeners[0]
		if got.Action != Replace {
			t.Errorf("%s of an exec listener: %s, want replace", name, got.Action)
		}
	}
	for name, mod := range replace {
		check(name, mod, Replace)
		check(name+" and routes", func(l *hclconfig.Listener) { mod(l); swap["routes: status"](l) }, Replace)
	}
	app := func(l *hclconfig.Listener) { l.App, l.Class = "m:app", "gevent" }
	got := Plan(cfg(lst("a", app)), cfg(lst("a", app, func(l *hclconfig.Listener) { l.MaxBodyBytes = 9 })), PlanOptions{}).Listeners[0]
	if got.Action != Replace {
		t.Errorf("app listener: %s, want replace", got.Action)
	}
	if s := Plan(cfg(lst("a")), cfg(lst("a", swap["headers"])), PlanOptions{}).String(); !strings.Contains(s, `swap     listener "a": headers changed; in place`) {
		t.Errorf("plan text: %q", s)
	}
}
