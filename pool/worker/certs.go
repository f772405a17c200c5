package worker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// certPoll is how often a worker looks at its certificate files. A stat of
// each file per second costs nothing, and follows renames and symlink
// swaps (certbot's live/ links, Kubernetes secrets) that a file watch on
// the old inode would miss.
const certPoll = time.Second

// Certificates holds a TLS listener's certificates for
// tls.Config.GetCertificate and reloads them when their files change, so a
// renewed certificate is served without restarting the worker. Handshakes
// read the current set through an atomic pointer: a reload never makes
// one wait or fail. A pair whose new files do not load (unreadable, not
// PEM, a key that does not match, or an expired certificate replacing a
// valid one) keeps its previous certificate, and the reason is logged
// once.
type Certificates struct {
	log   *slog.Logger
	pairs []*certPair
	cur   atomic.Pointer[certSet]

	mu sync.Mutex // one reload at a time
}

// certPair is one configured certificate and the state of its files.
type certPair struct {
	files  hclconfig.Certificate
	cert   *tls.Certificate
	loaded pairSig // the files' state when cert was read
	failed pairSig // the state that last failed to load, logged once
	seen   pairSig // the state at the previous poll
}

// fileSig is what a poll compares to notice a changed file: a rename or a
// rewrite changes the inode, the size or the modification time. A file
// that cannot be read has the zero state.
type fileSig struct {
	dev, ino, size uint64
	mtime          int64
}

type pairSig struct{ cert, key fileSig }

// certSet is an immutable snapshot of the certificates, indexed for SNI.
type certSet struct {
	def      *tls.Certificate
	exact    map[string]*tls.Certificate // lower-case DNS names
	wildcard map[string]*tls.Certificate // "example.com" for "*.example.com"
}

// LoadCertificates reads every configured pair; it fails when one cannot
// be loaded, since a worker must not start without its certificates. An
// expired certificate is loaded with a warning: refusing it would turn an
// expiry into an outage of every other name the listener serves.
func LoadCertificates(files []hclconfig.Certificate, log *slog.Logger) (*Certificates, error) {
	if len(files) == 0 {
		return nil, errors.New("load certificates: none configured")
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Certificates{log: log}
	for _, f := range files {
		p := &certPair{files: f}
		sig := statPair(f)
		cert, err := loadPair(f)
		if err != nil {
			return nil, fmt.Errorf("load certificates: %w", err)
		}
		if time.Now().After(cert.Leaf.NotAfter) {
			log.Warn("certificate expired", "cert", f.Cert, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		p.cert, p.loaded, p.seen = cert, sig, sig
		c.pairs = append(c.pairs, p)
	}
	c.publish()
	return c, nil
}

// GetCertificate picks the certificate for a handshake: the first one
// naming the client's SNI host exactly, else the first with a matching
// wildcard, else the default (the first configured).
func (c *Certificates) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
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

// publish builds a new snapshot from the pairs' current certificates.
func (c *Certificates) publish() {
	set := &certSet{def: c.pairs[0].cert, exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for _, p := range c.pairs {
		for _, n := range p.cert.Leaf.DNSNames {
			n = strings.ToLower(n)
			m, key := set.exact, n
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				m, key = set.wildcard, rest
			}
			if _, taken := m[key]; !taken {
				m[key] = p.cert
			}
		}
	}
	c.cur.Store(set)
}

// Reload reads the files that changed since they were loaded. With force
// (the master asked, on a reload) it reads every file and logs every
// failure; from a poll it reads a pair once its files changed, and logs a
// failure only when the files stayed the same across two polls, so a pair
// caught between writing the certificate and writing the key is retried
// quietly.
func (c *Certificates) Reload(force bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for _, p := range c.pairs {
		sig := statPair(p.files)
		stable := sig == p.seen
		p.seen = sig
		if !force && (sig == p.loaded || sig == p.failed) {
			continue
		}
		cert, err := loadPair(p.files)
		if err == nil && !time.Now().After(p.cert.Leaf.NotAfter) && time.Now().After(cert.Leaf.NotAfter) {
			err = fmt.Errorf("certificate %s expired on %s; keeping the current one, valid until %s", p.files.Cert,
				cert.Leaf.NotAfter.UTC().Format(time.RFC3339), p.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if err != nil {
			if force || stable {
				p.failed = sig
				c.log.Error("certificate reload failed; serving the previous one", "cert", p.files.Cert, "key", p.files.Key, "err", err)
			}
			continue
		}
		if sig == p.loaded && sameCert(cert, p.cert) {
			continue
		}
		p.cert, p.loaded, p.failed = cert, sig, pairSig{}
		changed = true
		c.log.Info("certificate reloaded", "cert", p.files.Cert, "names", strings.Join(cert.Leaf.DNSNames, ","),
			"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if changed {
		c.publish()
	}
}

// Watch polls the files every interval until quit is closed.
func (c *Certificates) Watch(quit <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			c.Reload(false)
		}
	}
}

func sameCert(a, b *tls.Certificate) bool {
	if len(a.Certificate) != len(b.Certificate) {
		return false
	}
	for i := range a.Certificate {
		if string(a.Certificate[i]) != string(b.Certificate[i]) {
			return false
		}
	}
	return true
}

// loadPair reads and parses one pair; Leaf is always set.
func loadPair(f hclconfig.Certificate) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("certificate %s, key %s: %w", f.Cert, f.Key, err)
	}
	if cert.Leaf == nil {
		return nil, fmt.Errorf("certificate %s: no leaf", f.Cert)
	}
	return &cert, nil
}

func statPair(f hclconfig.Certificate) pairSig {
	return pairSig{cert: statFile(f.Cert), key: statFile(f.Key)}
}

func statFile(path string) fileSig {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileSig{}
	}
	return fileSig{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano()}
}
