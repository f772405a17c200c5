package certset

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hfork/hfork/pool/wire"
)

// Set holds a TLS listener's certificates for tls.Config.GetCertificate. The worker never reads certificate or key
// files: the master reads them (as root, so a key may be readable by root
// alone), checks them, and hands the PEM over the control pipe, in the
// Spec and again in a Command whenever a pair changed. Handshakes read the
// current set through an atomic pointer: an update never makes one wait
// or fail.
type Set struct {
	log *slog.Logger
	cur atomic.Pointer[certSet]

	mu    sync.Mutex         // one update at a time
	certs []*tls.Certificate // the current pairs, in configured order
}

// certSet is an immutable snapshot of the certificates, indexed for SNI.
type certSet struct {
	def      *tls.Certificate
	exact    map[string]*tls.Certificate // lower-case DNS names
	wildcard map[string]*tls.Certificate // "example.com" for "*.example.com"
}

// New parses the pairs the master sent; it fails when one does
// not parse, since a worker must not start without its certificates.
func New(pairs []wire.CertPEM, log *slog.Logger) (*Set, error) {
	if len(pairs) == 0 {
		return nil, errors.New("load certificates: none received from the master")
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Set{log: log}
	for _, p := range pairs {
		cert, err := Parse(p)
		if err != nil {
			return nil, fmt.Errorf("load certificates: %w", err)
		}
		c.certs = append(c.certs, cert)
	}
	c.publish()
	return c, nil
}

// Update replaces the certificates with pairs (the master's current set).
// A pair that does not parse keeps the certificate it had, and says so;
// the master checked it, so that is a bug, not a renewal in progress.
func (c *Set) Update(pairs []wire.CertPEM) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make([]*tls.Certificate, len(pairs))
	for i, p := range pairs {
		cert, err := Parse(p)
		if err != nil {
			if i >= len(c.certs) {
				c.log.Error("certificate update rejected", "cert", p.Name, "err", err)
				return
			}
			c.log.Error("certificate update rejected; serving the previous one", "cert", p.Name, "err", err)
			cert = c.certs[i]
		}
		next[i] = cert
	}
	if len(next) == 0 {
		return
	}
	c.certs = next
	c.publish()
	c.log.Debug("certificates updated", "pairs", len(next))
}

// Parse turns the pair into a certificate with its Leaf set.
func Parse(p wire.CertPEM) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair([]byte(p.Cert), []byte(p.Key))
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", p.Name, err)
	}
	if cert.Leaf == nil {
		return nil, fmt.Errorf("certificate %s: no leaf", p.Name)
	}
	return &cert, nil
}

// GetCertificate picks the certificate for a handshake: the first one
// naming the client's SNI host exactly, else the first with a matching
// wildcard, else the default (the first configured).
func (c *Set) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := c.cur.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if cert := set.exact[name]; cert != nil {
			return cert, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if cert := set.wildcard[name[i+1:]]; cert != nil {
				return cert, nil
			}
		}
	}
	return set.def, nil
}

// publish builds a new snapshot from the current certificates.
func (c *Set) publish() {
	set := &certSet{def: c.certs[0], exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for _, cert := range c.certs {
		for _, n := range cert.Leaf.DNSNames {
			n = strings.ToLower(n)
			m, key := set.exact, n
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				m, key = set.wildcard, rest
			}
			if _, taken := m[key]; !taken {
				m[key] = cert
			}
		}
	}
	c.cur.Store(set)
}
