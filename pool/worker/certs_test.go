package worker

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/hclconfig/testcert"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// served is the first DNS name of the certificate chosen for sni.
func served(t *testing.T, c *Certificates, sni string) string {
	t.Helper()
	cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf.DNSNames[0]
}

func TestCertificatesSNI(t *testing.T) {
	dir := t.TempDir()
	var files []hclconfig.Certificate
	for _, names := range [][]string{
		{"default.test"},
		{"a.test", "www.a.test"},
		{"*.b.test"},
		{"exact.b.test"},
		{"a.test"}, // a second certificate for a name: the first one wins
	} {
		cert, key := testcert.Write(t, dir, strings.ReplaceAll(names[0], "*", "star")+strings.Repeat("x", len(files)), testcert.Options{Names: names})
		files = append(files, hclconfig.Certificate{Cert: cert, Key: key})
	}
	c, err := LoadCertificates(files, nil)
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
	if _, err := LoadCertificates([]hclconfig.Certificate{{Cert: filepath.Join(dir, "none.pem"), Key: filepath.Join(dir, "none.key")}}, nil); err == nil {
		t.Error("a worker started without its certificate")
	}
}

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

func TestCertificatesReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site", testcert.Options{Names: []string{"one.test"}})
	var logs logBuffer
	c, err := LoadCertificates([]hclconfig.Certificate{{Cert: cert, Key: key}}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}

	// A renewed pair is picked up by the next poll.
	certPEM, keyPEM := testcert.Make(t, testcert.Options{Names: []string{"two.test"}})
	replace(t, cert, certPEM)
	replace(t, key, keyPEM)
	c.Reload(false)
	if got := served(t, c, ""); got != "two.test" {
		t.Fatalf("after renewal: served %s, want two.test", got)
	}

	// Caught halfway (new certificate, old key): kept quietly, then taken
	// once the key arrives.
	certPEM, keyPEM = testcert.Make(t, testcert.Options{Names: []string{"three.test"}})
	replace(t, cert, certPEM)
	c.Reload(false)
	if got := served(t, c, ""); got != "two.test" {
		t.Fatalf("halfway: served %s, want two.test", got)
	}
	if strings.Contains(logs.String(), "reload failed") {
		t.Errorf("a pair caught halfway was logged as failed:\n%s", logs.String())
	}
	replace(t, key, keyPEM)
	c.Reload(false)
	if got := served(t, c, ""); got != "three.test" {
		t.Fatalf("after the key: served %s, want three.test", got)
	}

	// A broken file keeps the current certificate and is logged once, on
	// the second poll that sees it unchanged.
	replace(t, cert, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"))
	for range 3 {
		c.Reload(false)
	}
	if got := served(t, c, ""); got != "three.test" {
		t.Fatalf("after a broken write: served %s, want three.test", got)
	}
	if n := strings.Count(logs.String(), "certificate reload failed"); n != 1 {
		t.Errorf("broken certificate logged %d times, want once:\n%s", n, logs.String())
	}
	// A forced reload (the master's reload) says so again at once.
	c.Reload(true)
	if n := strings.Count(logs.String(), "certificate reload failed"); n != 2 {
		t.Errorf("forced reload of a broken certificate logged %d failures in all, want 2", n)
	}

	// An expired certificate never replaces a valid one.
	certPEM, keyPEM = testcert.Make(t, testcert.Options{Names: []string{"old.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	replace(t, cert, certPEM)
	replace(t, key, keyPEM)
	c.Reload(true)
	if got := served(t, c, ""); got != "three.test" {
		t.Errorf("an expired renewal replaced a valid certificate: served %s", got)
	}
	if !strings.Contains(logs.String(), "expired") {
		t.Errorf("the expired renewal was not logged:\n%s", logs.String())
	}

	// Nothing changed: nothing reloaded, nothing logged.
	before := logs.String()
	c.Reload(false)
	if logs.String() != before {
		t.Errorf("a poll with no change logged:\n%s", strings.TrimPrefix(logs.String(), before))
	}
}

// TestCertificatesWatch: the poll runs on its own until quit.
func TestCertificatesWatch(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site", testcert.Options{Names: []string{"one.test"}})
	c, err := LoadCertificates([]hclconfig.Certificate{{Cert: cert, Key: key}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { c.Watch(quit, 10*time.Millisecond); close(done) }()
	defer func() { close(quit); <-done }()
	certPEM, keyPEM := testcert.Make(t, testcert.Options{Names: []string{"two.test"}})
	replace(t, key, keyPEM)
	replace(t, cert, certPEM)
	deadline := time.Now().Add(waitLimit)
	for served(t, c, "") != "two.test" {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not pick up the renewed certificate")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
