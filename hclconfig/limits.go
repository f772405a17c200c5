package hclconfig

import (
	"math"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults of the per-listener limits. They are safe for a server that
// faces the internet and loose enough that no ordinary client meets them.
const (
	// defaultMaxHeaderBytes is net/http's own default: browsers with many
	// cookies stay far below it.
	defaultMaxHeaderBytes = 1 << 20
	// defaultMaxBodyBytes bounds what one request may push into an app or
	// upstream (many apps buffer a body whole), while almost every upload
	// fits; nginx's 1m is the setting operators raise most often.
	defaultMaxBodyBytes = 100 << 20
	// defaultReadHeaderTimeout cuts off a client that trickles its request
	// line and headers (slowloris), and bounds the TLS handshake.
	defaultReadHeaderTimeout = 10 * time.Second
	// defaultWriteTimeout is nginx's send_timeout: a client that takes
	// nothing of its answer for a minute is gone or hostile, and one that
	// reads at any steady rate is never cut off.
	defaultWriteTimeout = 60 * time.Second
	// defaultShutdownTimeout bounds how long a drain lets a transfer that
	// is still moving run past graceful_timeout: a large download at a
	// modest rate finishes, a worker does not linger for hours.
	defaultShutdownTimeout = 5 * time.Minute
	// defaultMaxDrainingGenerations lets a reload drain while two
	// earlier ones still do; a storm of reloads beyond that closes the
	// oldest instead of piling up workers.
	defaultMaxDrainingGenerations = 3
	// defaultHTTPSPort is where redirect_https sends clients.
	defaultHTTPSPort = 443
	// maxHeaderLimit is the largest max_header_bytes: far beyond any real
	// client, and it fits net/http's int on every platform.
	maxHeaderLimit = 1 << 30
)

// renamed are names other servers use for settings hfork already has
// under another name; each gets a pointer instead of "unsupported".
var renamed = map[string]string{
	"idle_timeout":    "keepalive",
	"max_connections": "worker_connections",
}

// limits decodes a listener's request limits and timeouts.
func (d *decoder) limits(attrs hcl.Attributes, l *Listener) {
	for _, name := range sortedKeys(renamed) {
		if a, set := attrs[name]; set {
			d.errorf(a.NameRange, "Argument "+quote(name)+" is called "+renamed[name]+" in hfork",
				"Use %s; hfork has one setting for this, so the two cannot disagree.", renamed[name])
		}
	}
	header := int64(l.MaxHeaderBytes)
	if d.size(attrs, "max_header_bytes", maxHeaderLimit, &header) {
		if header == 0 {
			d.errorf(attrs["max_header_bytes"].Expr.Range(), "Invalid max_header_bytes", "max_header_bytes must be more than zero; no request fits in no bytes.")
		}
		l.MaxHeaderBytes = int(header)
	}
	d.size(attrs, "max_body_bytes", math.MaxInt64, &l.MaxBodyBytes)
	if d.duration(attrs, "read_header_timeout", &l.ReadHeaderTimeout) && l.ReadHeaderTimeout == 0 {
		d.errorf(attrs["read_header_timeout"].Expr.Range(), "Invalid read_header_timeout", "read_header_timeout must be more than zero: without it, one client that sends its headers slowly holds a connection for ever.")
	}
	d.duration(attrs, "read_timeout", &l.ReadTimeout)
	d.duration(attrs, "write_timeout", &l.WriteTimeout)
	if d.integer(attrs, "max_connections_per_ip", &l.MaxConnsPerIP) && l.MaxConnsPerIP < 0 {
		d.errorf(attrs["max_connections_per_ip"].Expr.Range(), "Invalid max_connections_per_ip", "max_connections_per_ip is %d; use 0 (no cap) or more.", l.MaxConnsPerIP)
	}
	d.boolean(attrs, "underscores_in_headers", &l.UnderscoresInHeaders)
	if l.Class != ClassExec && l.ReadTimeout > 0 && l.ReadTimeout < l.ReadHeaderTimeout {
		if a, ok := attrs["read_timeout"]; ok {
			d.warnf(a.Expr.Range(), "read_timeout is shorter than read_header_timeout", "read_timeout covers the headers too, so it cuts a slow client off after %s, before read_header_timeout (%s) would.", formatDuration(l.ReadTimeout), formatDuration(l.ReadHeaderTimeout))
		}
	}
}

// redirectHTTPS decodes redirect_https and https_port.
// unknown: the block holds a misspelt key, which may be redirect_https.
func (d *decoder) redirectHTTPS(attrs hcl.Attributes, l *Listener, unknown bool) {
	if d.boolean(attrs, "redirect_https", &l.RedirectHTTPS) && l.RedirectHTTPS {
		l.HTTPSPort = defaultHTTPSPort
	}
	port := 0
	if !d.integer(attrs, "https_port", &port) {
		return
	}
	rng := attrs["https_port"].Expr.Range()
	switch {
	case !l.RedirectHTTPS && unknown:
	case !l.RedirectHTTPS:
		d.errorf(attrs["https_port"].Range, "https_port without redirect_https", "https_port is where redirect_https sends clients; set redirect_https = true, or remove https_port.")
	case port < 1 || port > 65535:
		d.errorf(rng, "Invalid https_port", "%d is not a port: use 1 to 65535.", port)
	default:
		l.HTTPSPort = port
	}
}
