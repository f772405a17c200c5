package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker/internal/upstream"
)

// upstreamIdlePerHost bounds the idle connections kept to one upstream:
// as many as a burst used, up to the event loop's bound (upIdleBurst).
// Closing those beyond a smaller number when a burst ends made the next
// burst dial them again: at 5000 clients, TIME_WAIT churn and errors.
const upstreamIdlePerHost = 8192

// maxRetryBody is the largest request body kept in memory so that the
// request may go to another upstream.
const maxRetryBody = 64 << 10

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

// proxy forwards requests to its upstreams, picked by the group's policy
// among the healthy ones. The request path is passed whole, the route
// prefix included (nginx's proxy_pass without a URI), joined to the
// upstream URL's own path if it has one. The upstream sees its own host
// in Host (nginx's default, Host $proxy_host; "localhost" for a unix
// socket); the client's Host goes in X-Forwarded-Host.
type proxy struct {
	group   *upstream.Group
	mu      sync.Mutex
	trs     map[*upstream.Member]*http.Transport // by mu
	rp      *httputil.ReverseProxy
	log     *slog.Logger
	headers hclconfig.RequestHeaders
	base    map[string]*url.URL // an upstream's URL by its Host, for its path
	fast    *FastProxy          // nil: the event loop leaves its requests to net/http (see buildFast)
	fds     FDAlarm             // out of file descriptors: 503 (fdlimit.go)
	buf     *bodyBuffers        // nil: request_buffering is off, bodies stream
}

// newProxy builds the proxy of c; readTimeout is the listener's
// read_timeout, which bounds the buffering of a body too.
func newProxy(c hclconfig.Proxy, readTimeout time.Duration, log *slog.Logger) (*proxy, error) {
	g, err := upstream.New(c, log)
	if err != nil {
		return nil, err
	}
	p := &proxy{group: g, log: log, headers: c.RequestHeaders, trs: map[*upstream.Member]*http.Transport{},
		base: map[string]*url.URL{}}
	if c.RequestBuffering {
		p.buf = newBodyBuffers(c, readTimeout)
	}
	for _, s := range c.Upstream {
		if strings.HasPrefix(s, "unix:") {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream: %w", err)
		}
		p.base[u.Scheme+"://"+u.Host] = u
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p,
		BufferPool:     proxyBufferPool,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	g.Start()
	return p, nil
}

// Close ends the group's probes and resolution.
func (p *proxy) Close() { p.group.Close() }

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.buf != nil && r.ContentLength != 0 && r.Header["Upgrade"] == nil {
		// Read whole before an upstream is contacted (reqbuffer.go). An
		// Upgrade's body, if it has one, is the tunnel's to stream.
		b, err := p.buf.read(w, r, time.Now())
		if err != nil {
			p.refuseBody(w, r, err)
			return
		}
		defer b.release()
		b.attach(r)
	} else if idempotent(r.Method) && r.ContentLength > 0 && r.ContentLength <= maxRetryBody && r.GetBody == nil {
		// A body kept whole may go to another upstream after a failure.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeStatus(w, http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if ip, ok := clientIP(r.RemoteAddr); ok {
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, ip))
	}
	p.rp.ServeHTTP(w, r)
}

// refuseBody answers a body that could not be buffered; no upstream saw
// the request. What is left of the body is never read, so the connection
// closes after the answer.
func (p *proxy) refuseBody(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadRequest
	var be *bodyError
	if errors.As(err, &be) {
		code = be.code
	}
	switch code {
	case http.StatusServiceUnavailable:
		p.fds.Note(p.log, "request body file", err)
	case http.StatusInternalServerError:
		p.log.Error("request body not buffered", "err", err)
	default:
		p.log.Debug("request body not buffered", "status", code, "remote", r.RemoteAddr, "err", err)
	}
	w.Header().Set("Connection", "close")
	writeStatus(w, code)
}

// rewrite sets the forwarding headers and request_headers; RoundTrip
// points the request at an upstream. ReverseProxy has already removed the
// client's X-Forwarded-* from pr.Out; the client's X-Forwarded-For is
// appended to, like nginx's $proxy_add_x_forwarded_for, while Host and
// Proto are ours.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "upstream"
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
	// hfork answers Expect itself, with 100 Continue once the body is read
	// (net/http's server does, on the first read): an upstream asked again
	// could make the transport wait a second for a 100 it never sends.
	delete(out, "Expect")
	applyRequestHeaders(out, p.headers)
}

// applyRequestHeaders applies request_headers: remove, then set, then add.
func applyRequestHeaders(h http.Header, rh hclconfig.RequestHeaders) {
	for _, k := range rh.Remove {
		h.Del(k)
	}
	for k, v := range rh.Set {
		h.Set(k, v)
	}
	for k, v := range rh.Add {
		h.Add(k, v)
	}
}

// RoundTrip sends the request to an upstream the policy picks, and to
// another one, up to retries times, when it failed before any answer: an
// idempotent request whose body, if any, is kept whole.
func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	client, _ := req.Context().Value(clientKey{}).(string)
	var tried []*upstream.Member
	var lastErr error
	for {
		m := p.group.Pick(client, tried)
		if m == nil {
			if lastErr == nil {
				return nil, upstream.ErrNoUpstream
			}
			return nil, lastErr
		}
		tried = append(tried, m)
		out := req
		if len(tried) == 1 && req.GetBody != nil {
			// A kept body is sent from a reader of the transport's own,
			// which it closes when it is done: the request's Body is
			// ReverseProxy's, and closing it reaches nothing.
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		if len(tried) > 1 {
			out = req.Clone(req.Context())
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, lastErr
				}
				out.Body = body
			}
		}
		u := p.urlFor(m, req.URL)
		out.URL = u
		out.Host = m.Host
		m.Begin()
		res, err := p.transport(m).RoundTrip(out)
		if err == nil {
			mb := &memberBody{ReadCloser: res.Body, m: m}
			res.Body = mb
			if rw, ok := mb.ReadCloser.(io.ReadWriteCloser); ok {
				// ReverseProxy takes an upgraded answer's body for the
				// tunnel's upstream half.
				res.Body = memberTunnel{mb, rw}
			}
			return res, nil
		}
		m.End()
		if req.Context().Err() != nil || OutOfFDs(err) {
			// Out of file descriptors is the worker's trouble: the
			// upstream is not marked and no other is tried (503).
			return nil, err
		}
		p.group.Failed(m, err.Error())
		lastErr = err
		if len(tried) > p.group.Retries() || !retryable(req, err) {
			return nil, err
		}
		p.log.Info("upstream failed; trying another", "upstream", m.Name, "err", err)
	}
}

// clientKey keys the client's IP in a proxied request's context, for
// ip_hash.
type clientKey struct{}

// urlFor is the URL the request goes to on m: the upstream URL's path
// joined with the request's, as httputil's SetURL joins them.
func (p *proxy) urlFor(m *upstream.Member, in *url.URL) *url.URL {
	u := *in
	u.Scheme, u.Host = "http", m.Host
	base := p.base["https://"+m.Host]
	if base != nil {
		u.Scheme = "https"
	} else {
		base = p.base["http://"+m.Host]
	}
	if base != nil && (base.Path != "" || base.RawQuery != "") {
		pr := &httputil.ProxyRequest{Out: &http.Request{URL: &u, Header: http.Header{}}, In: &http.Request{}}
		pr.SetURL(base)
		u = *pr.Out.URL
	}
	return &u
}

// transport is m's own transport: its pool of connections, dialed to its
// address whatever the URL's host says.
func (p *proxy) transport(m *upstream.Member) *http.Transport {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tr, ok := p.trs[m]; ok {
		return tr
	}
	// A new member may mean a host name resolved elsewhere: the
	// transports of members gone from the group go with them.
	live := p.group.Members()
	for old, tr := range p.trs {
		if !slices.Contains(live, old) {
			tr.CloseIdleConnections()
			delete(p.trs, old)
		}
	}
	rt := p.group.ReadTimeout()
	dialer := &net.Dialer{Timeout: p.group.ConnectTimeout(), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		// Never from the environment.
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, m.Network, m.Addr)
			if err != nil {
				return nil, err
			}
			return &readTimeoutConn{Conn: c, d: rt}, nil
		},
		MaxIdleConnsPerHost:   upstreamIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   p.group.ConnectTimeout(),
		TLSClientConfig:       &tls.Config{},
		ResponseHeaderTimeout: rt,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding passes through as it is. Without
		// this the transport would ask for gzip on its own and decompress
		// the answer: CPU spent to give the client what it would have had
		// anyway. HTTP/1.1 only, as nginx by default, so Upgrade requests
		// (WebSocket) always have a connection they can take over.
		DisableCompression: true,
	}
	p.trs[m] = tr
	return tr
}

// readTimeoutConn is read_timeout between two reads: each read must
// bring something within d.
type readTimeoutConn struct {
	net.Conn
	d time.Duration
}

func (c *readTimeoutConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.d))
	return c.Conn.Read(b)
}

// memberBody ends the member's count of requests in flight when the
// answer's body is closed.
type memberBody struct {
	io.ReadCloser
	m    *upstream.Member
	once sync.Once
}

func (b *memberBody) Close() error {
	b.once.Do(b.m.End)
	return b.ReadCloser.Close()
}

// memberTunnel is a memberBody that writes too.
type memberTunnel struct {
	*memberBody
	w io.Writer
}

func (t memberTunnel) Write(b []byte) (int, error) { return t.w.Write(b) }

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// retryable says a failed request may go to another upstream: it is
// idempotent, its body (if any) can be sent again, and the upstream took
// nothing of it: the connection was refused, reset or closed, or could
// not be made in time.
func retryable(req *http.Request, err error) bool {
	if !idempotent(req.Method) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
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

// errorHandler answers a failed upstream exchange: 503 when no upstream
// is healthy, 504 when the upstream was too slow, 502 otherwise, and one
// log line. A client that went away first is not the upstream's fault: it
// is logged at debug and recorded as 499, the status nginx uses for it.
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
	if errors.Is(err, upstream.ErrNoUpstream) {
		p.log.Warn("upstream failed", "err", err)
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
