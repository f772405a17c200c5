package pool

import (
	"crypto/tls"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/hclconfig/testcert"
	"github.com/hfork/hfork/internal/syncbuf"
	"github.com/hfork/hfork/pool/internal/certset"
)

// logBuffer collects log lines for assertions.
type logBuffer struct{ syncbuf.Buffer }

// replace writes a file the way renewal tools do: a new file renamed over
// the old one.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedName is the first DNS name of the default certificate, which the
// master's own set and the PEM handed to workers must agree on.
func servedName(t *testing.T, c *Certs) string {
	t.Helper()
	cert, err := c.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert == nil {
		t.Fatalf("no certificate: %v", err)
	}
	p, err := certset.Parse(c.PEM()[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.Leaf.DNSNames[0] != cert.Leaf.DNSNames[0] {
		t.Fatalf("the master serves %s but hands workers %s", cert.Leaf.DNSNames[0], p.Leaf.DNSNames[0])
	}
	return p.Leaf.DNSNames[0]
}

func TestCertsReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site", testcert.Options{Names: []string{"one.test"}})
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l := hclconfig.Listener{Name: "tls", TLS: hclconfig.TLS{Certificates: []hclconfig.Certificate{{Cert: cert, Key: key}}}}
	c, err := ReadCertificates(l, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.PEM()[0].Key, "PRIVATE KEY") {
		t.Fatal("the workers' pair carries no key")
	}

	// A renewed pair is picked up by the next poll, not sooner.
	certPEM, keyPEM := testcert.Make(t, testcert.Options{Names: []string{"two.test"}})
	replace(t, cert, certPEM)
	replace(t, key, keyPEM)
	if c.poll(time.Now().Add(certPoll / 2)) {
		t.Error("a poll within a second of the last one read the files")
	}
	if !c.poll(time.Now().Add(certPoll)) || servedName(t, c) != "two.test" {
		t.Fatalf("after renewal: served %s, want two.test", servedName(t, c))
	}

	// Caught halfway (new certificate, old key): kept quietly, then taken
	// once the key arrives.
	certPEM, keyPEM = testcert.Make(t, testcert.Options{Names: []string{"three.test"}})
	replace(t, cert, certPEM)
	if c.reload(false) || servedName(t, c) != "two.test" {
		t.Fatalf("halfway: served %s, want two.test", servedName(t, c))
	}
	if strings.Contains(logs.String(), "reload failed") {
		t.Errorf("a pair caught halfway was logged as failed:\n%s", logs.String())
	}
	replace(t, key, keyPEM)
	if !c.reload(false) || servedName(t, c) != "three.test" {
		t.Fatalf("after the key: served %s, want three.test", servedName(t, c))
	}

	// A broken file keeps the current certificate and is logged once, on
	// the second poll that sees it unchanged.
	replace(t, cert, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"))
	for range 3 {
		if c.reload(false) {
			t.Error("a broken file changed the set")
		}
	}
	if got := servedName(t, c); got != "three.test" {
		t.Fatalf("after a broken write: served %s, want three.test", got)
	}
	if n := strings.Count(logs.String(), "certificate reload failed"); n != 1 {
		t.Errorf("broken certificate logged %d times, want once:\n%s", n, logs.String())
	}
	// A forced reload (the master's reload) says so again at once.
	c.reload(true)
	if n := strings.Count(logs.String(), "certificate reload failed"); n != 2 {
		t.Errorf("forced reload of a broken certificate logged %d failures in all, want 2", n)
	}

	// An expired certificate never replaces a valid one.
	certPEM, keyPEM = testcert.Make(t, testcert.Options{Names: []string{"old.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	replace(t, cert, certPEM)
	replace(t, key, keyPEM)
	if c.reload(true) || servedName(t, c) != "three.test" {
		t.Errorf("an expired renewal replaced a valid certificate: served %s", servedName(t, c))
	}
	if !strings.Contains(logs.String(), "expired") {
		t.Errorf("the expired renewal was not logged:\n%s", logs.String())
	}

	// Nothing changed: nothing reloaded, nothing logged.
	before := logs.String()
	if c.reload(false) || logs.String() != before {
		t.Errorf("a poll with no change logged:\n%s", strings.TrimPrefix(logs.String(), before))
	}

	// A listener cannot start without its certificates.
	l.TLS.Certificates[0].Key = dir + "/none.key"
	if _, err := ReadCertificates(l, log); err == nil {
		t.Error("certificates loaded without their key")
	}
	if c, err := ReadCertificates(hclconfig.Listener{}, log); c != nil || err != nil {
		t.Errorf("a plain listener: %v, %v", c, err)
	}
}
