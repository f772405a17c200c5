package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hfork/hfork/engine"
	"github.com/hfork/hfork/hclconfig/testcert"
)

// The TLS tests generate their certificates into the test's temp dir:
// nothing committed can expire.

func tlsServerConfig(httpsPort, httpPort int, dir string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }

listener "https" {
  bind    = "127.0.0.1:%d"
  class   = "async"
  workers = 2
  tls {
    cert = %q
    key  = %q
    certificate {
      cert = %q
      key  = %q
    }
  }
  route "/" {
    respond { body = "secure\n" }
  }
}

listener "http" {
  bind           = "127.0.0.1:%d"
  class          = "async"
  workers        = 1
  redirect_https = true
  https_port     = %d
  route "/.well-known/acme-challenge/" {
    respond { body = "challenge\n" }
  }
}
`, httpsPort, filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key"),
		filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key"), httpPort, httpsPort)
}

// newTLSClient trusts any certificate (the tests look at which one was
// served), offers h2, and opens a new connection per request unless
// keepAlive.
func newTLSClient(sni string, keepAlive bool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: sni},
			ForceAttemptHTTP2: true,
			DisableKeepAlives: !keepAlive,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestTLSServe: HTTP/2 over TLS from two workers, a certificate by SNI,
// and a plain listener that sends everything but its ACME route to HTTPS.
func TestTLSServe(t *testing.T) {
	httpsPort, httpPort := mustFreePort(t), mustFreePort(t)
	dir := t.TempDir()
	testcert.Write(t, dir, "site", testcert.Options{Names: []string{"site.test", "127.0.0.1"}})
	testcert.Write(t, dir, "api", testcert.Options{Names: []string{"api.test"}})
	startMaster(t, "", tlsServerConfig(httpsPort, httpPort, dir)).waitLog(`"msg":"hfork ready"`, 1, 15*time.Second)

	base := fmt.Sprintf("https://127.0.0.1:%d/", httpsPort)
	for sni, want := range map[string]string{"": "site.test", "api.test": "api.test", "other.test": "site.test"} {
		resp, err := newTLSClient(sni, true).Get(base)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "secure\n" || resp.Proto != "HTTP/2.0" {
			t.Errorf("SNI %q: %s %q", sni, resp.Proto, body)
		}
		if got := resp.TLS.PeerCertificates[0].DNSNames[0]; got != want {
			t.Errorf("SNI %q: certificate of %s, want %s", sni, got, want)
		}
	}
	// HTTP/1.1 clients are served too.
	h1 := newTLSClient("", true)
	h1.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	if resp, err := h1.Get(base); err != nil || resp.Proto != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 client: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Post(fmt.Sprintf("http://127.0.0.1:%d/a/b?c=d", httpPort), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://127.0.0.1:%d/a/b?c=d", httpsPort); resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	_, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/.well-known/acme-challenge/t", httpPort))
	if err != nil || string(body) != "challenge\n" {
		t.Errorf("ACME route over plain HTTP: %q %v", body, err)
	}
}

// TestTLSRotationUnderLoad: 20 clients, each opening a new TLS connection
// per request, while the certificate files are replaced twice (the second
// time followed by a reload), each time once a request was served with the
// last certificate. No request fails, the workers are not restarted, and
// both new certificates are served.
func TestTLSRotationUnderLoad(t *testing.T) {
	skipShort(t)
	httpsPort, httpPort := mustFreePort(t), mustFreePort(t)
	dir := t.TempDir()
	testcert.Write(t, dir, "site", testcert.Options{Names: []string{"gen0.test"}})
	testcert.Write(t, dir, "api", testcert.Options{Names: []string{"api.test"}})
	m := startMaster(t, "", tlsServerConfig(httpsPort, httpPort, dir))
	m.waitLog(`"msg":"hfork ready"`, 1, 15*time.Second)
	pids := m.waitWorkers("https", 2)

	url := fmt.Sprintf("https://127.0.0.1:%d/", httpsPort)
	var ok, failed atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	var errs []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 20 {
		c := newTLSClient("", false)
		c.Transport.(*http.Transport).ForceAttemptHTTP2 = i%2 == 0
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					if len(errs) < 5 {
						errs = append(errs, fmt.Sprint(err))
					}
				} else {
					ok.Add(1)
					seen[resp.TLS.PeerCertificates[0].DNSNames[0]]++
				}
				mu.Unlock()
			}
		})
	}
	rotate := func(name string) {
		certPEM, keyPEM := testcert.Make(t, testcert.Options{Names: []string{name}})
		for path, data := range map[string][]byte{"site.pem": certPEM, "site.key": keyPEM} {
			tmp := filepath.Join(dir, path+".tmp")
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, path)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// served waits until a request was answered with the certificate for
	// name: the clients run through the change.
	served := func(name string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := seen[name]
			mu.Unlock()
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no request served with %s in 30s", name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	served("gen0.test")
	rotate("gen1.test") // picked up by the master's poll, pushed to the workers
	m.waitLog("certificate reloaded", 1, 10*time.Second)
	served("gen1.test")
	rotate("gen2.test")
	out, err := engine.ControlReload(engine.ControlPath(filepath.Join(m.dir, "hfork.pid")))
	if err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("reload: %q %v; want nothing changed in the config", out, err)
	}
	m.waitLog("certificate reloaded", 2, 10*time.Second)
	served("gen2.test")
	close(stop)
	wg.Wait()
	t.Logf("requests ok=%d failed=%d; certificates served %v; first errors %v", ok.Load(), failed.Load(), seen, errs)
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during certificate rotation", failed.Load())
	}
	if seen["gen1.test"] == 0 || seen["gen2.test"] == 0 {
		t.Errorf("served %v: want both renewed certificates", seen)
	}
	if now := m.waitWorkers("https", 2); !slices.Equal(sorted(now), sorted(pids)) {
		t.Errorf("workers were replaced: %v -> %v", pids, now)
	}
}

// TestTLSCheckCertificates: hfork -t refuses an expired certificate and a
// key that does not match, and warns (exit 0) about one that expires
// within 14 days.
func TestTLSCheckCertificates(t *testing.T) {
	dir := t.TempDir()
	day := 24 * time.Hour
	testcert.Write(t, dir, "soon", testcert.Options{NotAfter: time.Now().Add(3 * day)})
	testcert.Write(t, dir, "expired", testcert.Options{NotBefore: time.Now().Add(-10 * day), NotAfter: time.Now().Add(-day)})
	testcert.Write(t, dir, "other", testcert.Options{})
	conf := func(cert, key string) string {
		path := filepath.Join(dir, cert+"-"+key+".hcl")
		os.WriteFile(path, []byte(fmt.Sprintf(`listener "web" {
  bind = "127.0.0.1:8443"
  tls {
    cert = "%s.pem"
    key  = "%s.key"
  }
  route "/" {
    respond {}
  }
}
`, cert, key)), 0o644)
		return path
	}
	for _, tc := range []struct {
		cert, key string
		code      int
		want      string
	}{
		{"soon", "soon", 0, "Warning: Certificate expires soon"},
		{"expired", "expired", 1, "Error: Expired certificate"},
		{"soon", "other", 1, "Error: Certificate and key do not match"},
	} {
		var stdout, stderr bytes.Buffer
		code := NewProgram(&stdout, &stderr).Run([]string{"hfork", "-t", "-f", conf(tc.cert, tc.key)})
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s/%s: exit %d, want %d with %q:\n%s", tc.cert, tc.key, code, tc.code, tc.want, stderr.String())
		}
	}
}

// TestTLSResumesOnEveryWorker: the master gives both workers the same
// session ticket keys, so a client that reconnects resumes whichever
// worker the kernel hands it to (with keys of their own, about half of
// these reconnections would do a full handshake).
func TestTLSResumesOnEveryWorker(t *testing.T) {
	httpsPort, httpPort := mustFreePort(t), mustFreePort(t)
	dir := t.TempDir()
	testcert.Write(t, dir, "site", testcert.Options{Names: []string{"site.test", "127.0.0.1"}})
	testcert.Write(t, dir, "api", testcert.Options{Names: []string{"api.test"}})
	startMaster(t, "", tlsServerConfig(httpsPort, httpPort, dir)).waitLog(`"msg":"hfork ready"`, 1, 15*time.Second)
	addr := fmt.Sprintf("127.0.0.1:%d", httpsPort)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(4)
		resumed := 0
		const conns = 20
		for i := range conns + 1 {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "site.test",
				NextProtos: []string{"http/1.1"}, ClientSessionCache: cache, MaxVersion: v})
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			// The answer is read whole, so a TLS 1.3 ticket sent after the
			// handshake reaches the cache.
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
			if b, err := io.ReadAll(c); err != nil || !bytes.HasSuffix(b, []byte("secure\n")) {
				t.Fatalf("TLS %x, connection %d: %q, %v", v, i, b, err)
			}
			if i > 0 && c.ConnectionState().DidResume {
				resumed++
			}
			c.Close()
		}
		if resumed != conns {
			t.Errorf("TLS %x: %d of %d reconnections resumed", v, resumed, conns)
		}
	}
}
