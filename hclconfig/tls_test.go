package hclconfig

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/hfork/hfork/hclconfig/testcert"
)

// The certificates of these tests are generated into a temp dir: golden
// files cannot hold them, since a committed certificate expires.

func tlsConfig(body string) string {
	return fmt.Sprintf(`listener "web" {
  bind = "127.0.0.1:8443"
  tls {
%s
  }
  route "/" {
    respond {}
  }
}
`, body)
}

func TestTLSParse(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "default", testcert.Options{Names: []string{"example.test"}})
	otherCert, otherKey := testcert.Write(t, dir, "other", testcert.Options{Names: []string{"other.test", "*.other.test"}})
	// one file holding both chain and key, as some tools write them
	certPEM, _ := os.ReadFile(otherCert)
	keyPEM, _ := os.ReadFile(otherKey)
	both := filepath.Join(dir, "both.pem")
	if err := os.WriteFile(both, append(certPEM, keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}

	src := tlsConfig(fmt.Sprintf(`    cert = %q
    key  = %q
    min_version = "1.3"
    certificate {
      cert = %q
      key  = %q
    }
    certificate {
      cert = "both.pem"
      key  = "both.pem"
    }`, cert, key, otherCert, otherKey))
	c := parseOK(t, filepath.Join(dir, "server.hcl"), src)
	got := c.Listeners[0].TLS
	want := TLS{MinVersion: TLS13, Certificates: []Certificate{{cert, key}, {otherCert, otherKey}, {both, both}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tls = %#v\nwant %#v", got, want)
	}
	roundTrip(t, filepath.Join(dir, "server.hcl"), c)
	if out := string(Format(c)); !strings.Contains(out, "  tls {\n") || strings.Count(out, "certificate {") != 2 {
		t.Errorf("Format does not show the tls block with two certificate blocks:\n%s", out)
	}

	// certificate blocks alone: the first is the default
	c = parseOK(t, filepath.Join(dir, "server.hcl"), tlsConfig(fmt.Sprintf(`    certificate {
      cert = %q
      key  = %q
    }`, otherCert, otherKey)))
	if got := c.Listeners[0].TLS; got.MinVersion != TLS12 || len(got.Certificates) != 1 || got.Certificates[0].Cert != otherCert {
		t.Errorf("tls = %#v: want the block's certificate and min_version 1.2", got)
	}
	roundTrip(t, filepath.Join(dir, "server.hcl"), c)

	// tls changes the fingerprint; so do the file names, not their contents
	base := c.Listeners[0]
	plain := base
	plain.TLS = TLS{}
	if plain.Fingerprint() == base.Fingerprint() {
		t.Error("removing tls kept the fingerprint")
	}
	moved := base
	moved.TLS = TLS{MinVersion: TLS12, Certificates: []Certificate{{cert, key}}}
	if moved.Fingerprint() == base.Fingerprint() {
		t.Error("another certificate path kept the fingerprint")
	}
}

// TestTLSChecks: what hfork -t says about certificate files.
func TestTLSChecks(t *testing.T) {
	dir := t.TempDir()
	day := 24 * time.Hour
	good, goodKey := testcert.Write(t, dir, "good", testcert.Options{})
	_, otherKey := testcert.Write(t, dir, "other", testcert.Options{})
	soon, soonKey := testcert.Write(t, dir, "soon", testcert.Options{NotAfter: time.Now().Add(5 * day)})
	expired, expiredKey := testcert.Write(t, dir, "expired", testcert.Options{NotBefore: time.Now().Add(-30 * day), NotAfter: time.Now().Add(-day)})
	future, futureKey := testcert.Write(t, dir, "future", testcert.Options{NotBefore: time.Now().Add(day)})
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate\n"), 0o644)

	cases := []struct {
		name      string
		cert, key string
		severity  hcl.DiagnosticSeverity
		summary   string
		line      int // 4: cert, 5: key
	}{
		{"expires within 14 days", soon, soonKey, hcl.DiagWarning, "Certificate expires soon", 4},
		{"expired", expired, expiredKey, hcl.DiagError, "Expired certificate", 4},
		{"not valid yet", future, futureKey, hcl.DiagWarning, "Certificate not valid yet", 4},
		{"key of another certificate", good, otherKey, hcl.DiagError, "Certificate and key do not match", 5},
		{"not PEM", garbage, goodKey, hcl.DiagError, "Invalid certificate", 4},
		{"key is not a key", good, garbage, hcl.DiagError, "Invalid private key", 5},
		{"missing cert", filepath.Join(dir, "nope.pem"), goodKey, hcl.DiagError, "Missing certificate file", 4},
		{"missing key", good, filepath.Join(dir, "nope.key"), hcl.DiagError, "Missing key file", 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tlsConfig(fmt.Sprintf("    cert = %q\n    key  = %q", tc.cert, tc.key))
			c, files, diags := Parse("server.hcl", []byte(src))
			var out bytes.Buffer
			WriteDiagnostics(&out, files, diags, false)
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic, got:\n%s", out.String())
			}
			d := diags[0]
			if d.Severity != tc.severity || d.Summary != tc.summary || d.Subject.Start.Line != tc.line {
				t.Errorf("got:\n%s\nwant %q (severity %v) on line %d", out.String(), tc.summary, tc.severity, tc.line)
			}
			if (tc.severity == hcl.DiagWarning) != (len(c.Listeners) == 1) {
				t.Errorf("a warning must still give the config, an error must not (got %d listeners)", len(c.Listeners))
			}
		})
	}

	// the clock decides: the same certificate expires soon two weeks on
	saved := now
	t.Cleanup(func() { now = saved })
	now = func() time.Time { return time.Now().Add(360 * day) }
	_, _, diags := Parse("server.hcl", []byte(tlsConfig(fmt.Sprintf("    cert = %q\n    key  = %q", good, goodKey))))
	if len(diags) != 1 || diags[0].Summary != "Certificate expires soon" {
		t.Errorf("a year-long certificate 360 days on: %v", diags)
	}
}
