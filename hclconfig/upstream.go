package hclconfig

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// The proxy block: where requests go and how the worker keeps them going
// when an upstream fails.

// Balancing policies.
const (
	PolicyRoundRobin = "round_robin"
	PolicyLeastConn  = "least_conn"
	PolicyIPHash     = "ip_hash"
	PolicyFirst      = "first"
)

var policies = []string{PolicyRoundRobin, PolicyLeastConn, PolicyIPHash, PolicyFirst}

// Defaults, nginx's where it has one (max_fails, fail_timeout,
// proxy_connect_timeout, proxy_read_timeout).
const (
	defaultRetries         = 1
	defaultMaxFails        = 1
	defaultFailTimeout     = 10 * time.Second
	defaultConnectTimeout  = 5 * time.Second
	defaultProxyRead       = 60 * time.Second
	defaultResolveInterval = 30 * time.Second
	defaultCheckInterval   = 5 * time.Second
	defaultCheckTimeout    = 2 * time.Second
	// nginx's client_body_buffer_size is 16k on 64-bit machines, and its
	// client_body_timeout 60s.
	defaultBodyBufferSize = 16 << 10
	maxBodyBufferSize     = 64 << 20
	defaultBodyTimeout    = 60 * time.Second
)

var proxySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "upstream", Required: true},
		{Name: "policy"},
		{Name: "retries"},
		{Name: "max_fails"},
		{Name: "fail_timeout"},
		{Name: "connect_timeout"},
		{Name: "read_timeout"},
		{Name: "resolve_interval"},
		{Name: "request_buffering"},
		{Name: "body_buffer_size"},
		{Name: "body_temp_dir"},
		{Name: "body_timeout"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "health_check"}, {Type: "request_headers"}},
}

var healthCheckSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "path"}, {Name: "interval"}, {Name: "timeout"}, {Name: "status"}},
}

var requestHeadersSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "set"}, {Name: "add"}, {Name: "remove"}},
}

// proxy decodes a proxy block.
func (d *decoder) proxy(b *hcl.Block) Proxy {
	p := Proxy{
		Policy:          PolicyRoundRobin,
		Retries:         defaultRetries,
		MaxFails:        defaultMaxFails,
		FailTimeout:     defaultFailTimeout,
		ConnectTimeout:  defaultConnectTimeout,
		ReadTimeout:     defaultProxyRead,
		ResolveInterval: defaultResolveInterval,

		RequestBuffering: true,
		BodyBufferSize:   defaultBodyBufferSize,
		BodyTimeout:      defaultBodyTimeout,
	}
	content, _ := d.content(b.Body, proxySchema)
	attrs := content.Attributes
	ups, rngs, ok := d.strList(attrs, "upstream", true)
	if ok && len(ups) == 0 {
		d.errorf(attrs["upstream"].Expr.Range(), "No upstream", "upstream needs at least one address, like \"http://127.0.0.1:9000\" or \"unix:/run/app.sock\".")
	}
	for i, u := range ups {
		if path, isUnix := strings.CutPrefix(u, "unix:"); isUnix {
			if path == "" || strings.ContainsAny(path, "\x00") {
				d.errorf(rngs[i], "Invalid upstream", "%q names no socket file; write \"unix:\" and a path, like \"unix:/run/app.sock\".", u)
				continue
			}
			p.Upstream = append(p.Upstream, "unix:"+d.path(path))
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			d.errorf(rngs[i], "Invalid upstream", "%q is not an absolute http or https URL nor a unix socket, like \"http://127.0.0.1:9000\" or \"unix:/run/app.sock\".", u)
			continue
		}
		p.Upstream = append(p.Upstream, u)
	}
	d.enum(attrs, "policy", policies, &p.Policy)
	if d.integer(attrs, "retries", &p.Retries) && p.Retries < 0 {
		d.errorf(attrs["retries"].Expr.Range(), "Invalid retries", "retries is %d; use 0 (never try another upstream) or more.", p.Retries)
	}
	if d.integer(attrs, "max_fails", &p.MaxFails) && p.MaxFails < 0 {
		d.errorf(attrs["max_fails"].Expr.Range(), "Invalid max_fails", "max_fails is %d; use 0 (never mark an upstream down on failures) or more.", p.MaxFails)
	}
	d.positive(attrs, "fail_timeout", &p.FailTimeout)
	d.positive(attrs, "connect_timeout", &p.ConnectTimeout)
	d.positive(attrs, "read_timeout", &p.ReadTimeout)
	d.positive(attrs, "resolve_interval", &p.ResolveInterval)
	d.requestBuffering(attrs, &p)
	var checkAt, headersAt *hcl.Range
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "health_check":
			if checkAt != nil {
				d.errorf(blk.DefRange, "Duplicate health_check block", "A health_check block is already declared at %s; there can be only one per proxy.", at(*checkAt))
				continue
			}
			checkAt = blk.DefRange.Ptr()
			p.HealthCheck = d.healthCheck(blk)
		case "request_headers":
			if headersAt != nil {
				d.errorf(blk.DefRange, "Duplicate request_headers block", "A request_headers block is already declared at %s; there can be only one per proxy.", at(*headersAt))
				continue
			}
			headersAt = blk.DefRange.Ptr()
			p.RequestHeaders = d.requestHeaders(blk)
		}
	}
	return p
}

// requestBuffering decodes the settings of request buffering. The
// temporary directory must exist when the config is tested, not when the
// first large upload fails.
func (d *decoder) requestBuffering(attrs hcl.Attributes, p *Proxy) {
	d.boolean(attrs, "request_buffering", &p.RequestBuffering)
	if d.size(attrs, "body_buffer_size", maxBodyBufferSize, &p.BodyBufferSize) && p.BodyBufferSize == 0 {
		d.errorf(attrs["body_buffer_size"].Expr.Range(), "Invalid body_buffer_size", "body_buffer_size must be more than zero, like \"16KiB\".")
	}
	if d.str(attrs, "body_temp_dir", &p.BodyTempDir) {
		if p.BodyTempDir == "" {
			d.errorf(attrs["body_temp_dir"].Expr.Range(), "Invalid body_temp_dir", "body_temp_dir is empty; leave it out for the system's temporary directory, or name a directory.")
		} else {
			p.BodyTempDir = d.path(p.BodyTempDir)
			d.checkDir(attrs["body_temp_dir"].Expr.Range(), "body_temp_dir", p.BodyTempDir)
		}
	}
	d.positive(attrs, "body_timeout", &p.BodyTimeout)
}

// positive sets a duration that must be more than zero.
func (d *decoder) positive(attrs hcl.Attributes, name string, dst *time.Duration) {
	if d.duration(attrs, name, dst) && *dst <= 0 {
		d.errorf(attrs[name].Expr.Range(), "Invalid "+name, "%s must be more than zero.", name)
	}
}

func (d *decoder) healthCheck(b *hcl.Block) HealthCheck {
	h := HealthCheck{Path: "/", Interval: defaultCheckInterval, Timeout: defaultCheckTimeout}
	content, _ := d.content(b.Body, healthCheckSchema)
	attrs := content.Attributes
	if d.str(attrs, "path", &h.Path) && !strings.HasPrefix(h.Path, "/") {
		d.errorf(attrs["path"].Expr.Range(), "Invalid health_check path", "path %q must start with \"/\", like \"/healthz\".", h.Path)
	}
	d.positive(attrs, "interval", &h.Interval)
	d.positive(attrs, "timeout", &h.Timeout)
	if list, rngs, ok := d.strList(attrs, "status", false); ok {
		for i, s := range list {
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 599 {
				d.errorf(rngs[i], "Invalid health_check status", "%q is not an HTTP status; use codes from 100 to 599, like [200, 204].", s)
				continue
			}
			h.Status = append(h.Status, n)
		}
	}
	return h
}

func (d *decoder) requestHeaders(b *hcl.Block) RequestHeaders {
	var h RequestHeaders
	content, _ := d.content(b.Body, requestHeadersSchema)
	attrs := content.Attributes
	for _, name := range []string{"set", "add"} {
		m, ok := d.strMap(attrs, name)
		if !ok {
			continue
		}
		d.checkHeaders(attrs[name], m)
		if len(m) == 0 {
			continue
		}
		if name == "set" {
			h.Set = m
		} else {
			h.Add = m
		}
	}
	if list, rngs, ok := d.strList(attrs, "remove", false); ok {
		for i, s := range list {
			if !isToken(s) {
				d.errorf(rngs[i], "Invalid header name", "%q cannot name an HTTP header.", s)
				continue
			}
			h.Remove = append(h.Remove, s)
		}
	}
	return h
}

func formatProxy(b *body, p Proxy) {
	b.attr("upstream", listHCL(p.Upstream))
	b.attr("policy", quoteHCL(p.Policy))
	b.attr("retries", intHCL(p.Retries))
	b.attr("max_fails", intHCL(p.MaxFails))
	b.attr("fail_timeout", durationHCL(p.FailTimeout))
	b.attr("connect_timeout", durationHCL(p.ConnectTimeout))
	b.attr("read_timeout", durationHCL(p.ReadTimeout))
	b.attr("resolve_interval", durationHCL(p.ResolveInterval))
	b.attr("request_buffering", boolHCL(p.RequestBuffering))
	b.attr("body_buffer_size", sizeHCL(p.BodyBufferSize))
	if p.BodyTempDir != "" {
		b.attr("body_temp_dir", quoteHCL(p.BodyTempDir))
	}
	b.attr("body_timeout", durationHCL(p.BodyTimeout))
	if h := p.HealthCheck; h.Interval > 0 {
		hb := b.block("health_check")
		hb.attr("path", quoteHCL(h.Path))
		hb.attr("interval", durationHCL(h.Interval))
		hb.attr("timeout", durationHCL(h.Timeout))
		status := make([]string, len(h.Status))
		for i, s := range h.Status {
			status[i] = strconv.Itoa(s)
		}
		hb.attr("status", "["+strings.Join(status, ", ")+"]")
	}
	if h := p.RequestHeaders; len(h.Set)+len(h.Add)+len(h.Remove) > 0 {
		hb := b.block("request_headers")
		hb.attr("set", mapHCL(h.Set))
		hb.attr("add", mapHCL(h.Add))
		hb.attr("remove", listHCL(h.Remove))
	}
}

// The client's address: trusted_proxies and proxy_protocol on a listener.

// TrustUnix in trusted_proxies trusts peers on the listener's unix sockets.
const TrustUnix = "unix"

func (d *decoder) clientAddress(attrs hcl.Attributes, l *Listener) {
	if list, rngs, ok := d.strList(attrs, "trusted_proxies", true); ok {
		for i, s := range list {
			if s == TrustUnix {
				l.TrustedProxies = append(l.TrustedProxies, s)
				continue
			}
			if ip := net.ParseIP(s); ip != nil {
				bits := 128
				if ip.To4() != nil {
					bits = 32
				}
				s += "/" + strconv.Itoa(bits)
			}
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				d.errorf(rngs[i], "Invalid trusted proxy", "%q is not an address or a CIDR range, like \"10.0.0.0/8\" or \"192.0.2.7\", nor \"unix\".", s)
				continue
			}
			l.TrustedProxies = append(l.TrustedProxies, n.String())
		}
	}
	d.boolean(attrs, "proxy_protocol", &l.ProxyProtocol)
}
