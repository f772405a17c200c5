package pool

import (
	"crypto/tls"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// A live pool whose listener has had no ready worker for longer than
// boot_timeout is failing: the master answers its clients itself (see
// fallback) until a worker is ready again. A staged pool never fails this
// way (its reload fails instead), nor one told to have no workers
// (draining, WINCH).

// Failing reports whether the master is answering for the listener
// because no worker has been ready for longer than boot_timeout.
func (p *Pool) Failing() bool { return p.fallback != nil }

// readyWorkers counts workers that serve, recycled ones included.
func (p *Pool) readyWorkers() int {
	n := 0
	for _, w := range p.workers {
		if w.State == Ready {
			n++
		}
	}
	return n
}

// checkFailing starts the fallback once the listener has been without a
// ready worker for longer than boot_timeout, and keeps its Retry-After
// near the next retry.
func (p *Pool) checkFailing(now time.Time) {
	if p.readyWorkers() > 0 {
		p.recovered()
		return
	}
	if p.unreadySince.IsZero() {
		p.unreadySince = now
	}
	if p.fallback != nil {
		p.fallback.setRetryAfter(p.retryAt.Sub(now))
		return
	}
	l := p.cfg.Listener
	if p.cfg.Staged || p.target == 0 || now.Sub(p.unreadySince) <= l.BootTimeout {
		return
	}
	// An exec'd program may speak anything; a TLS listener is answered
	// only with the certificates the master holds.
	tlsConf := p.fallbackTLS()
	http := l.Class != hclconfig.ClassExec && (!l.TLS.Enabled() || tlsConf != nil)
	f, err := startFallback(p.cfg.Sockets, http, tlsConf, l.ProxyProtocol)
	if err != nil {
		p.log.Error("listener failing; cannot answer its clients", "err", err, "cause", p.cause())
		return
	}
	f.setRetryAfter(p.retryAt.Sub(now))
	p.fallback = f
	answer := "the master answers 503 until a worker is ready"
	if !http {
		answer = "the master closes its connections until a worker is ready"
	}
	p.log.Error("listener failing: no worker ready", "for", now.Sub(p.unreadySince).Round(time.Millisecond).String(),
		"boot_timeout", l.BootTimeout.String(), "cause", p.cause(), "answer", answer)
}

// recovered ends the failing state once a worker is ready.
func (p *Pool) recovered() {
	p.unreadySince = time.Time{}
	if p.fallback == nil {
		return
	}
	p.stopFallback()
	p.log.Info("listener recovered: a worker is ready")
}

func (p *Pool) stopFallback() {
	if p.fallback != nil {
		p.fallback.stop()
		p.fallback = nil
	}
}

// cause is why the listener has no ready worker, for the log.
func (p *Pool) cause() string {
	if p.lastFailure != "" {
		return p.lastFailure
	}
	return "workers have not reported ready"
}

// fallbackTLS is the TLS configuration the master answers a TLS listener
// with, or nil: then its connections are closed.
func (p *Pool) fallbackTLS() *tls.Config {
	c := p.cfg.Certs
	if c == nil {
		return nil
	}
	min := uint16(tls.VersionTLS12)
	if p.cfg.Listener.TLS.MinVersion == hclconfig.TLS13 {
		min = tls.VersionTLS13
	}
	return &tls.Config{MinVersion: min, GetCertificate: c.GetCertificate, NextProtos: []string{"http/1.1"}}
}
