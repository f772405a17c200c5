package hclconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var tlsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cert"}, {Name: "key"}, {Name: "min_version"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "certificate"}},
}

var certificateSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cert", Required: true}, {Name: "key", Required: true}},
}

var tlsVersions = []string{TLS12, TLS13}

// certExpirySoon is how close to its end a certificate must be for -t to
// warn: two weeks leave time for a renewal that failed to be noticed.
const certExpirySoon = 14 * 24 * time.Hour

// now is the clock certificates are checked against; tests move it.
var now = time.Now

// tls decodes a listener's tls block. cert and key give the default
// certificate; each certificate block adds one chosen by SNI. At least one
// of the two forms is needed.
func (d *decoder) tls(b *hcl.Block) TLS {
	t := TLS{MinVersion: TLS12}
	content, unknown := d.content(b.Body, tlsSchema)
	attrs := content.Attributes
	d.enum(attrs, "min_version", tlsVersions, &t.MinVersion)

	_, hasCert := attrs["cert"]
	_, hasKey := attrs["key"]
	switch {
	case hasCert && hasKey:
		if c, ok := d.certificate(attrs); ok {
			t.Certificates = append(t.Certificates, c)
		}
	case hasCert:
		d.errorf(attrs["cert"].Range, "Certificate without a key", "cert and key go together: add key = \"...\" with the certificate's private key.")
	case hasKey:
		d.errorf(attrs["key"].Range, "Key without a certificate", "cert and key go together: add cert = \"...\" with the certificate chain.")
	}
	extra := 0
	for _, blk := range content.Blocks {
		bc, _ := d.content(blk.Body, certificateSchema)
		if c, ok := d.certificate(bc.Attributes); ok {
			t.Certificates = append(t.Certificates, c)
		}
		extra++
	}
	if !hasCert && !hasKey && extra == 0 && !unknown {
		d.errorf(b.DefRange, "TLS without a certificate", `A tls block needs a certificate: cert = "cert.pem" and key = "key.pem", or certificate { } blocks.`)
	}
	return t
}

// certificate decodes a cert and key pair and checks the files.
func (d *decoder) certificate(attrs hcl.Attributes) (Certificate, bool) {
	var c Certificate
	okCert := d.str(attrs, "cert", &c.Cert)
	okKey := d.str(attrs, "key", &c.Key)
	if !okCert || !okKey {
		return c, false
	}
	c.Cert, c.Key = d.path(c.Cert), d.path(c.Key)
	d.checkCertificate(c, attrs["cert"].Expr.Range(), attrs["key"].Expr.Range())
	return c, true
}

// checkCertificate reports what would fail a worker or a client: a file
// that is missing or unreadable, a chain that does not parse, a key that
// does not match, a certificate past its end (an error) or close to it or
// not valid yet (warnings).
func (d *decoder) checkCertificate(c Certificate, certRng, keyRng hcl.Range) {
	certPEM, okCert := d.readFile(certRng, "certificate", c.Cert)
	keyPEM, okKey := d.readFile(keyRng, "key", c.Key)
	if !okCert {
		return
	}
	leaf, err := parseLeaf(certPEM)
	if err != nil {
		d.errorf(certRng, "Invalid certificate", "%s: %s.", c.Cert, err)
		return
	}
	if !okKey {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		if isKeyMismatch(err) {
			d.errorf(keyRng, "Certificate and key do not match", "The private key in %s is not the key of the certificate in %s.", c.Key, c.Cert)
		} else {
			d.errorf(keyRng, "Invalid private key", "%s: %s.", c.Key, err)
		}
		return
	}
	t := now()
	switch {
	case t.After(leaf.NotAfter):
		d.errorf(certRng, "Expired certificate", "The certificate in %s (%s) expired on %s; clients refuse it.", c.Cert, certName(leaf), leaf.NotAfter.UTC().Format(time.DateTime+" MST"))
	case leaf.NotAfter.Sub(t) < certExpirySoon:
		d.warnf(certRng, "Certificate expires soon", "The certificate in %s (%s) expires on %s, in %s; renew it (workers pick up the new files without a restart).", c.Cert, certName(leaf), leaf.NotAfter.UTC().Format(time.DateTime+" MST"), leaf.NotAfter.Sub(t).Round(time.Hour))
	case t.Before(leaf.NotBefore):
		d.warnf(certRng, "Certificate not valid yet", "The certificate in %s (%s) is valid only from %s; clients refuse it until then.", c.Cert, certName(leaf), leaf.NotBefore.UTC().Format(time.DateTime+" MST"))
	}
}

// isKeyMismatch recognises crypto/tls's mismatch error by its text: the
// package exports no sentinel for it.
func isKeyMismatch(err error) bool {
	switch err.Error() {
	case "tls: private key does not match public key", "tls: private key type does not match public key type":
		return true
	}
	return false
}

// parseLeaf returns the first certificate of a PEM chain.
func parseLeaf(pemBytes []byte) (*x509.Certificate, error) {
	for len(pemBytes) > 0 {
		var blk *pem.Block
		blk, pemBytes = pem.Decode(pemBytes)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return leaf, nil
	}
	return nil, errors.New("no PEM CERTIFICATE block")
}

// certName is how a diagnostic names a certificate: its first DNS name.
func certName(c *x509.Certificate) string {
	switch {
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.IPAddresses) > 0:
		return c.IPAddresses[0].String()
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	}
	return "no name"
}

// readFile reads a file the config names, reporting why it cannot.
func (d *decoder) readFile(rng hcl.Range, what, path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.errorf(rng, "Missing "+what+" file", "%s does not exist.", path)
	case err != nil:
		d.errorf(rng, "Unreadable "+what+" file", "%s cannot be read: %v.", path, errors.Unwrap(err))
	default:
		return b, true
	}
	return nil, false
}
