package pool

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/wire"
)

// certPoll is how often the master looks at a TLS listener's certificate
// files. A stat of each file per second costs nothing, and follows renames
// and symlink swaps (certbot's live/ links, Kubernetes secrets) that a
// file watch on the old inode would miss.
const certPoll = time.Second

// Certs holds a TLS listener's certificates in the master. The master
// reads the files, as root, so a private key may be readable by root
// alone (0600, as certbot and most packages install it): workers get the
// PEM over their control pipe and never need to open a key file. It is
// used from the engine's loop only, like the pool that owns it.
//
// A pair whose new files do not load (unreadable, not PEM, a key that
// does not match, or an expired certificate replacing a valid one) keeps
// its previous certificate, and the reason is logged once.
type Certs struct {
	log    *slog.Logger
	pairs  []*certPair
	polled time.Time
	parsed *certset.Set // the same set, for the master's own answers
}

// certPair is one configured certificate and the state of its files.
type certPair struct {
	files  hclconfig.Certificate
	pem    wire.CertPEM
	leaf   *x509.Certificate
	loaded pairSig // the files' state when pem was read
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

// ticketSeed is the seed of every TLS worker's session ticket keys: one
// per master, so that siblings and the generations a reload starts open
// each other's tickets.
var ticketSeed = sync.OnceValue(certset.NewTicketSeed)

// ReadCertificates reads every pair of l's tls block; nil without one. It
// fails when a pair cannot be loaded, since a listener must not start
// without its certificates. An expired certificate is loaded with a
// warning: refusing it would turn an expiry into an outage of every other
// name the listener serves.
func ReadCertificates(l hclconfig.Listener, log *slog.Logger) (*Certs, error) {
	if !l.TLS.Enabled() {
		return nil, nil
	}
	c := &Certs{log: log, polled: time.Now()}
	for _, f := range l.TLS.Certificates {
		p := &certPair{files: f}
		sig := statPair(f)
		pem, leaf, err := readPair(f)
		if err != nil {
			return nil, fmt.Errorf("listener %s: load certificates: %w", l.Name, err)
		}
		if time.Now().After(leaf.NotAfter) {
			log.Warn("certificate expired", "cert", f.Cert, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		p.pem, p.leaf, p.loaded, p.seen = pem, leaf, sig, sig
		c.pairs = append(c.pairs, p)
	}
	parsed, err := certset.New(c.PEM(), log)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", l.Name, err)
	}
	c.parsed = parsed
	return c, nil
}

// PEM is the current set, in configured order, as workers get it.
func (c *Certs) PEM() []wire.CertPEM {
	out := make([]wire.CertPEM, len(c.pairs))
	for i, p := range c.pairs {
		out[i] = p.pem
	}
	return out
}

// GetCertificate serves the master's own TLS answers (see fallback).
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.parsed.GetCertificate(hello)
}

// poll reloads changed files once certPoll has passed; it reports whether
// the set changed.
func (c *Certs) poll(now time.Time) bool {
	if now.Sub(c.polled) < certPoll {
		return false
	}
	c.polled = now
	return c.reload(false)
}

// reload reads the files that changed since they were loaded and reports
// whether the set changed. With force (a reload: the operator says renewed
// files are in place) it reads every file and logs every failure; from a
// poll it reads a pair once its files changed, and logs a failure only
// when the files stayed the same across two polls, so a pair caught
// between writing the certificate and writing the key is retried quietly.
func (c *Certs) reload(force bool) bool {
	changed := false
	for _, p := range c.pairs {
		sig := statPair(p.files)
		stable := sig == p.seen
		p.seen = sig
		if !force && (sig == p.loaded || sig == p.failed) {
			continue
		}
		pem, leaf, err := readPair(p.files)
		if err == nil && !time.Now().After(p.leaf.NotAfter) && time.Now().After(leaf.NotAfter) {
			err = fmt.Errorf("certificate %s expired on %s; keeping the current one, valid until %s", p.files.Cert,
				leaf.NotAfter.UTC().Format(time.RFC3339), p.leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if err != nil {
			if force || stable {
				p.failed = sig
				c.log.Error("certificate reload failed; serving the previous one", "cert", p.files.Cert, "key", p.files.Key, "err", err)
			}
			continue
		}
		if pem == p.pem {
			p.loaded, p.failed = sig, pairSig{}
			continue
		}
		p.pem, p.leaf, p.loaded, p.failed = pem, leaf, sig, pairSig{}
		changed = true
		c.log.Info("certificate reloaded", "cert", p.files.Cert, "names", strings.Join(leaf.DNSNames, ","),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if changed {
		c.parsed.Update(c.PEM())
	}
	return changed
}

// readPair reads one pair's files and checks that they parse and match.
func readPair(f hclconfig.Certificate) (wire.CertPEM, *x509.Certificate, error) {
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return wire.CertPEM{}, nil, fmt.Errorf("certificate %s: %w", f.Cert, err)
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return wire.CertPEM{}, nil, fmt.Errorf("key %s: %w", f.Key, err)
	}
	pem := wire.CertPEM{Name: f.Cert, Cert: string(certPEM), Key: string(keyPEM)}
	cert, err := certset.Parse(pem)
	if err != nil {
		return wire.CertPEM{}, nil, fmt.Errorf("certificate %s, key %s: %w", f.Cert, f.Key, errors.Unwrap(err))
	}
	return pem, cert.Leaf, nil
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
