package hclconfig

import (
	"strconv"
)

// Format prints c as HCL with every default filled in, for hfork -T. It
// prints only what the listener's class uses, so the output parses back to
// the same Config; paths are absolute and durations read like "30s".
func Format(c Config) []byte {
	b := &body{}
	out := "# effective configuration of " + c.File + "\n\n"
	if c.Pidfile != "" {
		b.attr("pidfile", quoteHCL(c.Pidfile))
	}
	if c.User != "" {
		b.attr("user", quoteHCL(c.User))
	}
	if c.Group != "" {
		b.attr("group", quoteHCL(c.Group))
	}
	if c.Pidfile != "" || c.User != "" || c.Group != "" {
		b.blank()
	}

	lb := b.block("log")
	lb.attr("level", quoteHCL(c.Log.Level))
	lb.attr("format", quoteHCL(c.Log.Format))
	if c.Log.File != "" {
		lb.attr("file", quoteHCL(c.Log.File))
	}
	b.blank()

	rb := b.block("reload")
	rb.attr("watch", strconv.FormatBool(c.Reload.Watch))
	rb.attr("debounce", durationHCL(c.Reload.Debounce))
	rb.attr("max_draining_generations", intHCL(c.Reload.MaxDrainingGenerations))
	if c.Metrics.Bind != "" {
		b.blank()
		b.block("metrics").attr("bind", quoteHCL(c.Metrics.Bind))
	}

	for _, l := range c.Listeners {
		b.blank()
		formatListener(b.block("listener", l.Name), l, c)
	}
	return []byte(out + b.String())
}

func formatListener(b *body, l Listener, c Config) {
	if l.App != "" {
		formatApp(b, l, c)
		return
	}
	b.attr("bind", listHCL(l.Bind))
	b.attr("class", quoteHCL(l.Class))
	b.attr("workers", intHCL(l.Workers))
	if l.Class == ClassThread {
		b.attr("threads", intHCL(l.Threads))
	}
	if l.Class == ClassThread || l.Class == ClassAsync {
		b.attr("worker_connections", intHCL(l.WorkerConnections))
	}
	b.attr("timeout", durationHCL(l.Timeout))
	b.attr("graceful_timeout", durationHCL(l.GracefulTimeout))
	if l.Class != ClassExec {
		b.attr("shutdown_timeout", durationHCL(l.ShutdownTimeout))
	}
	b.attr("boot_timeout", durationHCL(l.BootTimeout))
	if l.Class != ClassExec {
		b.attr("keepalive", durationHCL(l.Keepalive))
	}
	if l.Class == ClassAsync {
		b.attr("event_loop", boolHCL(l.EventLoop))
	}
	if l.Class != ClassExec {
		b.attr("max_requests", intHCL(l.MaxRequests))
		b.attr("max_requests_jitter", intHCL(l.MaxRequestsJitter))
		b.attr("max_header_bytes", sizeHCL(int64(l.MaxHeaderBytes)))
		b.attr("max_body_bytes", sizeHCL(l.MaxBodyBytes))
		b.attr("read_header_timeout", durationHCL(l.ReadHeaderTimeout))
		b.attr("read_timeout", durationHCL(l.ReadTimeout))
		b.attr("write_timeout", durationHCL(l.WriteTimeout))
		b.attr("max_connections_per_ip", intHCL(l.MaxConnsPerIP))
		b.attr("underscores_in_headers", boolHCL(l.UnderscoresInHeaders))
	}
	if l.RedirectHTTPS {
		b.attr("redirect_https", "true")
		b.attr("https_port", intHCL(l.HTTPSPort))
	}
	// A listener's user and group are printed whenever either level sets
	// one, so that an override back to the master's own ("") survives.
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
	if len(l.TrustedProxies) > 0 {
		b.attr("trusted_proxies", listHCL(l.TrustedProxies))
	}
	if l.ProxyProtocol {
		b.attr("proxy_protocol", "true")
	}

	if l.Class == ClassExec {
		b.attr("command", listHCL(l.Command))
		b.attr("env", mapHCL(l.Env))
		b.attr("pass_env", listHCL(l.PassEnv))
		b.attr("inherit_env", strconv.FormatBool(l.InheritEnv))
		b.attr("dir", quoteHCL(l.Dir))
		b.attr("ready", quoteHCL(l.Ready))
		b.attr("stop_signal", quoteHCL(l.StopSignal))
		return
	}

	if l.TLS.Enabled() {
		b.blank()
		formatTLS(b.block("tls"), l.TLS)
	}
	if l.AccessLog.File != "" {
		b.blank()
		ab := b.block("access_log")
		ab.attr("file", quoteHCL(l.AccessLog.File))
		ab.attr("format", quoteHCL(l.AccessLog.Format))
	}
	formatErrorPages(b, l.ErrorPages)
	if !l.Headers.IsZero() {
		b.blank()
		formatHeaders(b, l.Headers)
	}
	if len(l.Compress.Encodings) > 0 || l.Compress.Off {
		b.blank()
		formatCompress(b, l.Compress)
	}
	for _, r := range l.Routes {
		b.blank()
		formatRoute(b.block("route", r.Prefix), r)
	}
	for _, h := range l.Hosts {
		b.blank()
		hb := b.block("host", h.Label)
		hb.attr("names", listHCL(h.Names))
		formatErrorPages(hb, h.ErrorPages)
		formatHeaders(hb, h.Headers)
		formatCompress(hb, h.Compress)
		for _, r := range h.Routes {
			hb.blank()
			formatRoute(hb.block("route", r.Prefix), r)
		}
	}
}

func formatRoute(b *body, r Route) {
	formatErrorPages(b, r.ErrorPages)
	formatHeaders(b, r.Headers)
	formatCompress(b, r.Compress)
	ab := b.block(r.App)
	switch r.App {
	case AppRespond:
		ab.attr("status", intHCL(r.Respond.Status))
		ab.attr("body", quoteHCL(r.Respond.Body))
		ab.attr("headers", mapHCL(r.Respond.Headers))
	case AppStatic:
		ab.attr("root", quoteHCL(r.Static.Root))
		ab.attr("index", listHCL(r.Static.Index))
		if r.Static.Fallback != "" {
			ab.attr("fallback", quoteHCL(r.Static.Fallback))
		}
		ab.attr("hidden", listHCL(r.Static.Hidden))
		if r.Static.Precompressed {
			ab.attr("precompressed", "true")
		}
	case AppProxy:
		formatProxy(ab, r.Proxy)
	case AppRedirect:
		ab.attr("to", quoteHCL(r.Redirect.To))
		ab.attr("status", intHCL(r.Redirect.Status))
	}
}

// formatTLS prints the default certificate as cert and key, and the others
// as certificate blocks, which is how they parse back in the same order.
func formatTLS(b *body, t TLS) {
	def := t.Certificates[0]
	b.attr("cert", quoteHCL(def.Cert))
	b.attr("key", quoteHCL(def.Key))
	b.attr("min_version", quoteHCL(t.MinVersion))
	for _, c := range t.Certificates[1:] {
		cb := b.block("certificate")
		cb.attr("cert", quoteHCL(c.Cert))
		cb.attr("key", quoteHCL(c.Key))
	}
}
