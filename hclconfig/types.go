package hclconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Worker classes.
const (
	ClassSync   = "sync"
	ClassThread = "thread"
	ClassAsync  = "async"
	ClassExec   = "exec"
)

// Route app kinds.
const (
	AppRespond  = "respond"
	AppStatic   = "static"
	AppProxy    = "proxy"
	AppRedirect = "redirect"
	AppStatus   = "status"
)

// Config is a validated configuration: durations parsed, defaults filled,
// relative paths resolved against the config file's directory. It holds no
// pointers, so a copy is a snapshot and two values compare by content.
type Config struct {
	// File is the absolute path the configuration was read from.
	File    string `json:"file"`
	Pidfile string `json:"pidfile,omitempty"` // absolute, or "" when not configured
	// User and Group are the top-level defaults; each Listener carries the
	// resolved pair its workers run as.
	User      string     `json:"user,omitempty"`
	Group     string     `json:"group,omitempty"`
	Log       Log        `json:"log"`
	Reload    Reload     `json:"reload"`
	Metrics   Metrics    `json:"metrics,omitzero"`
	Listeners []Listener `json:"listeners"` // in file order
}

// Metrics is the metrics block: where the master serves Prometheus
// metrics. Bind "" means off.
type Metrics struct {
	Bind string `json:"bind,omitempty"` // normalized like a listener's bind
}

// Log is the log block.
type Log struct {
	Level  string `json:"level"`          // debug | info | warn | error
	Format string `json:"format"`         // auto | text | json
	File   string `json:"file,omitempty"` // absolute; "" means stderr
}

// Reload is the reload block.
type Reload struct {
	Watch    bool          `json:"watch"`
	Debounce time.Duration `json:"debounce"`
	// MaxDrainingGenerations bounds a listener's generations draining at
	// once: a reload that would drain one more first closes the oldest.
	MaxDrainingGenerations int `json:"max_draining_generations"`
}

// Listener is one listener block: its sockets and its pool of workers.
type Listener struct {
	Name string `json:"name"`
	// Bind holds normalized addresses: "host:port" for TCP (IPv6 hosts in
	// brackets) or "unix:/abs/path".
	Bind              []string      `json:"bind"`
	Class             string        `json:"class"`
	Workers           int           `json:"workers"`
	Threads           int           `json:"threads"`
	WorkerConnections int           `json:"worker_connections"`
	Timeout           time.Duration `json:"timeout"`
	GracefulTimeout   time.Duration `json:"graceful_timeout"`
	// ShutdownTimeout bounds a drain for a transfer still moving at
	// graceful_timeout (a built-in worker lets it run until then); an exec
	// listener's is its GracefulTimeout.
	ShutdownTimeout   time.Duration `json:"shutdown_timeout"`
	BootTimeout       time.Duration `json:"boot_timeout"`
	Keepalive         time.Duration `json:"keepalive"`
	MaxRequests       int           `json:"max_requests"`
	MaxRequestsJitter int           `json:"max_requests_jitter"`
	// EventLoop: an async listener (plain HTTP, or HTTP/1.1 over TLS)
	// answers GET and HEAD for respond, static, redirect and proxy routes
	// from an epoll loop.
	EventLoop bool `json:"event_loop,omitempty"`

	// Limits on what one client may send and how slowly (built-in classes).
	MaxHeaderBytes    int           `json:"max_header_bytes"`
	MaxBodyBytes      int64         `json:"max_body_bytes"` // 0 is unlimited
	ReadHeaderTimeout time.Duration `json:"read_header_timeout"`
	ReadTimeout       time.Duration `json:"read_timeout"` // 0 is none
	// WriteTimeout is the longest wait between two successful writes of
	// an answer (nginx's send_timeout), not a cap on the whole answer.
	WriteTimeout time.Duration `json:"write_timeout"` // 0 is none
	// MaxConnsPerIP caps the connections one client address holds open
	// in one worker; 0 is no cap.
	MaxConnsPerIP int `json:"max_connections_per_ip"`
	// UnderscoresInHeaders keeps request header names with an underscore,
	// which are otherwise dropped before an app or upstream sees them.
	UnderscoresInHeaders bool `json:"underscores_in_headers,omitempty"`

	// TrustedProxies are the peers (CIDR ranges, and "unix" for unix
	// socket peers) whose X-Forwarded-For and X-Request-ID are believed.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// ProxyProtocol: every connection starts with a PROXY protocol v1 or
	// v2 header, which gives the client's address.
	ProxyProtocol bool `json:"proxy_protocol,omitempty"`

	// TLS is set when the listener serves HTTPS on every bind.
	TLS TLS `json:"tls,omitzero"`
	// RedirectHTTPS answers every request no route matches with a 308 to
	// the same URL on https://, at HTTPSPort (443 is left out of the URL).
	RedirectHTTPS bool `json:"redirect_https,omitempty"`
	HTTPSPort     int  `json:"https_port,omitempty"`

	// User and Group the workers run as; "" keeps the master's.
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
	// Socket* apply to the listener's unix socket files after bind.
	SocketMode  string `json:"socket_mode,omitempty"` // octal, like "0660"
	SocketOwner string `json:"socket_owner,omitempty"`
	SocketGroup string `json:"socket_group,omitempty"`

	AccessLog AccessLog `json:"access_log"`
	Routes    []Route   `json:"routes,omitempty"` // longest prefix first
	// Hosts are the listener's virtual hosts, in file order; Routes serve
	// the requests whose Host matches none of them.
	Hosts []Host `json:"hosts,omitempty"`
	// Headers is the listener's header policy, applied before its hosts'
	// and routes' own.
	Headers Headers `json:"headers,omitzero"`
	// ErrorPages replace hfork's own error answers, by status, with the
	// contents of a file (absolute path); inner levels override outer.
	ErrorPages map[int]string `json:"error_pages,omitempty"`
	// Compress is the listener's compress block; a host's or a route's
	// own replaces it whole.
	Compress Compress `json:"compress,omitzero"`

	// exec class
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// PassEnv names variables of the master's environment the program
	// gets besides the few every worker gets; InheritEnv passes all of it.
	PassEnv    []string `json:"pass_env,omitempty"`
	InheritEnv bool     `json:"inherit_env,omitempty"`
	Dir        string   `json:"dir,omitempty"`         // absolute
	Ready      string   `json:"ready,omitempty"`       // notify | started
	StopSignal string   `json:"stop_signal,omitempty"` // e.g. "TERM"

	// App, when set, runs Python workers: "module:callable", served by
	// hfork's runner under Class with the interpreter Python. Env, PassEnv,
	// InheritEnv and Dir apply to it as to an exec program.
	App    string `json:"app,omitempty"`
	Python string `json:"python,omitempty"`
}

// TLS versions a listener accepts as min_version.
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// TLS is a listener's tls block. Certificates[0] is the default, served
// when the client's SNI name matches no certificate; the others are chosen
// by the names they hold. Only the paths are configuration: the files'
// contents may change under running workers; the master reads them again
// and hands the workers what changed.
type TLS struct {
	Certificates []Certificate `json:"certificates,omitempty"`
	MinVersion   string        `json:"min_version,omitempty"` // TLS12 or TLS13
}

// Enabled reports whether the listener serves TLS.
func (t TLS) Enabled() bool { return len(t.Certificates) > 0 }

// Certificate is a PEM certificate chain (leaf first) and its private key.
type Certificate struct {
	Cert string `json:"cert"` // absolute
	Key  string `json:"key"`  // absolute; may be the same file as Cert
}

// AccessLog is a listener's access_log block; File "" means off.
type AccessLog struct {
	File   string `json:"file,omitempty"`   // absolute, or "-" for stdout
	Format string `json:"format,omitempty"` // combined | json
}

// Host is a host block: the routes that serve requests whose Host header
// matches one of Names. A name is exact ("shop.example.com") or a leading
// wildcard ("*.example.com"), lower-case and without a port.
type Host struct {
	Label  string   `json:"label"`
	Names  []string `json:"names"`
	Routes []Route  `json:"routes"` // longest prefix first
	// Headers applies after the listener's and before each route's.
	Headers Headers `json:"headers,omitzero"`
	// ErrorPages replace hfork's own error answers, by status, with the
	// contents of a file (absolute path); inner levels override outer.
	ErrorPages map[int]string `json:"error_pages,omitempty"`
	Compress   Compress       `json:"compress,omitzero"`
}

// Compress is a compress block. The zero value is "not declared here";
// Off is a block that turns compression off (encodings = []).
type Compress struct {
	Encodings []string `json:"encodings,omitempty"` // the server's preference, first best
	Types     []string `json:"types,omitempty"`     // media types; "text/*" is a family
	MinSize   int64    `json:"min_size,omitempty"`
	Level     int      `json:"level,omitempty"` // 1..9
	Off       bool     `json:"off,omitempty"`
}

// Headers is a headers block: what to do to the response headers of
// every answer at its level. Keys are canonical. Each level removes, then
// sets, then adds; the outer level goes first, so the innermost wins.
type Headers struct {
	Set    map[string]string `json:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"` // sorted
}

// IsZero reports whether h does nothing.
func (h Headers) IsZero() bool { return len(h.Set) == 0 && len(h.Add) == 0 && len(h.Remove) == 0 }

// Route maps a path prefix to exactly one app; App names which field is set.
type Route struct {
	Prefix   string   `json:"prefix"`
	App      string   `json:"app"`
	Respond  Respond  `json:"respond,omitzero"`
	Static   Static   `json:"static,omitzero"`
	Proxy    Proxy    `json:"proxy,omitzero"`
	Redirect Redirect `json:"redirect,omitzero"`
	Headers  Headers  `json:"headers,omitzero"`
	// ErrorPages: as the listener's, for this route only.
	ErrorPages map[int]string `json:"error_pages,omitempty"`
	Compress   Compress       `json:"compress,omitzero"`
}

// Respond answers every request with a fixed response.
type Respond struct {
	Status  int               `json:"status"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Static serves files under Root (absolute); the route prefix is stripped.
type Static struct {
	Root  string   `json:"root"`
	Index []string `json:"index"` // tried in order; default ["index.html"]
	// Fallback, a path under Root, is served with 200 for a missing file
	// (a single-page app's "index.html"); "" is a plain 404.
	Fallback string `json:"fallback,omitempty"`
	// Hidden are patterns (path.Match) for one path segment that are
	// never served; default [".*"]. "/.well-known/" is always served.
	Hidden []string `json:"hidden"`
	// Precompressed serves "file.zst" or "file.gz" beside "file" to a
	// client that accepts it.
	Precompressed bool `json:"precompressed,omitempty"`
}

// Proxy forwards requests to Upstream: http or https URLs, or
// "unix:/abs/path" sockets; Policy picks one per request among the
// healthy ones.
type Proxy struct {
	Upstream []string `json:"upstream"`
	Policy   string   `json:"policy"` // round_robin | least_conn | ip_hash | first
	// Retries is how many other upstreams a request that failed before
	// any byte of an answer may try.
	Retries int `json:"retries"`
	// MaxFails failures within FailTimeout keep an upstream out for
	// FailTimeout; 0 never marks one down.
	MaxFails    int           `json:"max_fails"`
	FailTimeout time.Duration `json:"fail_timeout"`
	// ConnectTimeout bounds a connection's setup; ReadTimeout the wait for
	// the answer's head and between two reads of its body.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	ReadTimeout    time.Duration `json:"read_timeout"`
	// ResolveInterval is how often a hostname upstream is resolved again.
	ResolveInterval time.Duration `json:"resolve_interval"`
	// RequestBuffering reads a request's body whole (BodyBufferSize bytes
	// in memory, the rest in an unlinked file in BodyTempDir, "" for the
	// system's temporary directory) before an upstream is contacted, with
	// at most BodyTimeout between two reads (nginx's
	// proxy_request_buffering, client_body_buffer_size,
	// client_body_temp_path and client_body_timeout). Off, the body
	// streams to the upstream as it arrives.
	RequestBuffering bool           `json:"request_buffering"`
	BodyBufferSize   int64          `json:"body_buffer_size"`
	BodyTempDir      string         `json:"body_temp_dir,omitempty"`
	BodyTimeout      time.Duration  `json:"body_timeout"`
	HealthCheck      HealthCheck    `json:"health_check,omitzero"`
	RequestHeaders   RequestHeaders `json:"request_headers,omitzero"`
}

// HealthCheck probes each upstream with a GET of Path every Interval; an
// answer with a Status in the list (any 2xx or 3xx when empty) within
// Timeout passes. Interval 0: no health_check block.
type HealthCheck struct {
	Path     string        `json:"path"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	Status   []int         `json:"status,omitempty"`
}

// RequestHeaders changes the headers of what goes upstream, after hfork's
// own: Remove first, then Set (replacing), then Add (appending).
type RequestHeaders struct {
	Set    map[string]string `json:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// Redirect answers with a redirect to To.
type Redirect struct {
	To     string `json:"to"`
	Status int    `json:"status"`
}

// Fingerprint identifies everything a worker of this listener sees except
// the number of workers: two listeners with the same fingerprint run
// identical workers, so a reload that changes only Workers is a scale.
func (l Listener) Fingerprint() string {
	c := l
	c.Workers = 0
	b, err := json.Marshal(c)
	if err != nil {
		panic("hclconfig: fingerprint: " + err.Error()) // plain data always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Listener returns the listener named name.
func (c Config) Listener(name string) (Listener, bool) {
	for _, l := range c.Listeners {
		if l.Name == name {
			return l, true
		}
	}
	return Listener{}, false
}
