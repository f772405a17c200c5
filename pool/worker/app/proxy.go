package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// Upstream limits. A dead upstream must cost a request a few seconds at
// most, never a hang; a slow one gets nginx's proxy_read_timeout default.
const (
	upstreamDialTimeout   = 5 * time.Second
	upstreamHeaderTimeout = 60 * time.Second
	upstreamIdlePerHost   = 256
)

// upstreamTransport is shared by every proxy route in the worker so that
// keep-alive connections to one upstream are pooled once. It speaks
// HTTP/1.1 only, as nginx does by default, so Upgrade requests (WebSocket)
// always have a connection they can take over; it never reads proxy
// settings from the environment.
var upstreamTransport = &http.Transport{
	Proxy: nil,
	DialContext: (&net.Dialer{
		Timeout:   upstreamDialTimeout,
		KeepAlive: 30 * time.Second,
	}).DialContext,
	MaxIdleConnsPerHost:   upstreamIdlePerHost,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   upstreamDialTimeout,
	ResponseHeaderTimeout: upstreamHeaderTimeout,
	ExpectContinueTimeout: time.Second,
	// The client's Accept-Encoding passes through as it is. Without this
	// the transport would ask for gzip on its own and decompress the
	// answer: CPU spent to give the client what it would have had anyway.
	DisableCompression: true,
}

// proxyBuffers keeps ReverseProxy from allocating 32 KiB per response.
type proxyBuffers struct{ p sync.Pool }

func (b *proxyBuffers) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *proxyBuffers) Put(buf []byte) { b.p.Put(&buf) }

var proxyBufferPool = &proxyBuffers{}

var (
	hdrProtoHTTP  = []string{"http"}
	hdrProtoHTTPS = []string{"https"}
)

// proxy forwards requests round-robin to its upstreams. The request path is
// passed whole, the route prefix included (nginx's proxy_pass without a
// URI), joined to the upstream URL's own path if it has one. The upstream
// sees its own host in Host (nginx's default, Host $proxy_host); the
// client's Host goes in X-Forwarded-Host.
type proxy struct {
	targets []*url.URL
	next    atomic.Uint64
	rp      *httputil.ReverseProxy
	log     *slog.Logger
	fast    []*FastUpstream // nil: no fast path (see buildFast)
	fds     FDAlarm         // out of file descriptors: 503 (fdlimit.go)
}

func newProxy(c hclconfig.Proxy, log *slog.Logger) (*proxy, error) {
	if len(c.Upstream) == 0 {
		return nil, errors.New("proxy: no upstream")
	}
	p := &proxy{log: log}
	for _, s := range c.Upstream {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("proxy: upstream %q: want http:// or https:// and a host", s)
		}
		p.targets = append(p.targets, u)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      upstreamTransport,
		BufferPool:     proxyBufferPool,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

func (p *proxy) pick() *url.URL {
	n := p.next.Add(1) - 1
	return p.targets[n%uint64(len(p.targets))]
}

// rewrite points the outbound request at the next upstream and sets the
// forwarding headers. ReverseProxy has already removed the client's
// X-Forwarded-* from pr.Out; the client's X-Forwarded-For is appended to,
// like nginx's $proxy_add_x_forwarded_for, while Host and Proto are ours.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.pick())
	in, out := pr.In, pr.Out.Header
	prior := in.Header["X-Forwarded-For"]
	if ip, ok := clientIP(in.RemoteAddr); ok {
		if len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out["X-Forwarded-For"] = []string{ip}
	} else if len(prior) > 0 {
		// A unix socket peer is a local proxy in front of us: its chain is
		// the only client address there is.
		out["X-Forwarded-For"] = prior
	}
	if in.Host != "" {
		out["X-Forwarded-Host"] = []string{in.Host}
	}
	if in.TLS != nil {
		out["X-Forwarded-Proto"] = hdrProtoHTTPS
	} else {
		out["X-Forwarded-Proto"] = hdrProtoHTTP
	}
}

// clientIP returns the address part of a "host:port" remote address. Unix
// socket peers have none.
func clientIP(remote string) (string, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil || host == "" {
		return "", false
	}
	return host, true
}

// modifyResponse tells the worker when the upstream switched protocols: the
// connection becomes a tunnel and must not count as an in-flight request.
// ReverseProxy calls it before it hijacks the client connection.
func (p *proxy) modifyResponse(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols && res.Request != nil {
		Upgraded(res.Request)
	}
	return nil
}

// errorHandler answers a failed upstream exchange: 504 when the upstream was
// too slow, 502 otherwise, and one log line. A client that went away first
// is not the upstream's fault: it is logged at debug and recorded as 499,
// the status nginx uses for it.
func (p *proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		p.log.Debug("client gone before upstream answered", "upstream", r.URL.Host, "err", err)
		w.WriteHeader(499)
		return
	}
	if OutOfFDs(err) {
		p.fds.Note(p.log, "upstream connection", err)
		writeStatus(w, http.StatusServiceUnavailable)
		return
	}
	code := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		code = http.StatusGatewayTimeout
	}
	p.log.Warn("upstream failed", "upstream", r.URL.Host, "err", err)
	writeStatus(w, code)
}
