package certset

import (
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig/testcert"
	"github.com/hfork/hfork/internal/syncbuf"
	"github.com/hfork/hfork/pool/wire"
)

// logBuffer collects log lines for assertions.
type logBuffer struct{ syncbuf.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// served is the first DNS name of the certificate chosen for sni.
func served(t *testing.T, c *Set, sni string) string {
	t.Helper()
	cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf.DNSNames[0]
}

// madePair is a fresh pair for names.
func madePair(t *testing.T, names ...string) wire.CertPEM {
	cert, key := testcert.Make(t, testcert.Options{Names: names})
	return wire.CertPEM{Name: names[0], Cert: string(cert), Key: string(key)}
}

func TestCertificatesSNI(t *testing.T) {
	var pairs []wire.CertPEM
	for _, names := range [][]string{
		{"default.test"},
		{"a.test", "www.a.test"},
		{"*.b.test"},
		{"exact.b.test"},
		{"a.test"}, // a second certificate for a name: the first one wins
	} {
		pairs = append(pairs, madePair(t, names...))
	}
	c, err := New(pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{
		"":             "default.test",
		"unknown.test": "default.test",
		"a.test":       "a.test",
		"WWW.A.Test.":  "a.test",
		"x.b.test":     "*.b.test",
		"exact.b.test": "exact.b.test",
		"b.test":       "default.test", // a wildcard covers one label, not the bare domain
		"y.x.b.test":   "default.test",
	} {
		if got := served(t, c, sni); got != want {
			t.Errorf("SNI %q: served %s, want %s", sni, got, want)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("a worker started without its certificates")
	}
	broken := pairs[0]
	broken.Key = pairs[1].Key
	if _, err := New([]wire.CertPEM{broken}, nil); err == nil {
		t.Error("a worker started with a key that does not match its certificate")
	}
}

// TestCertificatesUpdate: the master's new set replaces the served one; a
// pair that does not parse keeps its certificate and is logged.
func TestCertificatesUpdate(t *testing.T) {
	var logs logBuffer
	c, err := New([]wire.CertPEM{madePair(t, "one.test"), madePair(t, "api.test")}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	c.Update([]wire.CertPEM{madePair(t, "two.test"), madePair(t, "api2.test")})
	if got := served(t, c, ""); got != "two.test" {
		t.Fatalf("after an update: served %s, want two.test", got)
	}
	if got := served(t, c, "api2.test"); got != "api2.test" {
		t.Fatalf("after an update: SNI api2.test served %s", got)
	}
	c.Update([]wire.CertPEM{{Name: "broken", Cert: "-----BEGIN CERTIFICATE-----\nbroken\n", Key: "x"}, madePair(t, "api3.test")})
	if got := served(t, c, ""); got != "two.test" {
		t.Errorf("a broken pair replaced the default: served %s", got)
	}
	if got := served(t, c, "api3.test"); got != "api3.test" {
		t.Errorf("the good pair of the same update was not taken: served %s", got)
	}
	if !strings.Contains(logs.String(), "certificate update rejected") {
		t.Errorf("the broken pair was not logged:\n%s", logs.String())
	}
}
