package worker

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/hclconfig/testcert"
	"github.com/hfork/hfork/internal/syncbuf"
	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/wire"
)

// tlsWorker starts a worker of class serving TLS with the given
// certificates (the first is the default) and returns it with them.
func tlsWorker(t *testing.T, class string, h http.Handler, names ...[]string) (*testWorker, *certset.Set) {
	t.Helper()
	dir := t.TempDir()
	var files []hclconfig.Certificate
	for i, n := range names {
		cert, key := testcert.Write(t, dir, "c"+string(rune('0'+i)), testcert.Options{Names: n})
		files = append(files, hclconfig.Certificate{Cert: cert, Key: key})
	}
	l := testListener(class)
	l.TLS = hclconfig.TLS{Certificates: files, MinVersion: hclconfig.TLS12}
	var pairs []wire.CertPEM
	for _, f := range files {
		pairs = append(pairs, pemPair(t, f.Cert, f.Key))
	}
	certs, err := certset.New(pairs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tw := startWorker(t, l, h, nil, func(o *options) { o.Certificates = certs })
	return tw, certs
}

// tlsClient trusts any certificate (the tests check which one was served)
// and speaks HTTP/2 when the server offers it.
func tlsClient(serverName string, keepAlive bool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: serverName},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: !keepAlive,
	}}
}

func TestTLSProtocols(t *testing.T) {
	for _, tc := range []struct {
		class, proto string
	}{
		{hclconfig.ClassAsync, "HTTP/2.0"},
		{hclconfig.ClassThread, "HTTP/2.0"},
		{hclconfig.ClassSync, "HTTP/1.1"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			tw, _ := tlsWorker(t, tc.class, http.HandlerFunc(ok200), []string{"localhost"})
			c := tlsClient("localhost", true)
			for range 3 {
				resp, err := c.Get("https://" + tw.addr + "/")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "ok" || resp.Proto != tc.proto || resp.TLS == nil {
					t.Fatalf("status %d body %q proto %s", resp.StatusCode, body, resp.Proto)
				}
			}
			// HTTP/1.1 stays available to clients that do not offer h2.
			conn, err := tls.Dial("tcp", tw.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				t.Errorf("ALPN %q for an HTTP/1.1 client", p)
			}
			// TLS 1.1 is refused: min_version defaults to 1.2.
			if old, err := tls.Dial("tcp", tw.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
				old.Close()
				t.Error("a TLS 1.1 handshake succeeded")
			}
		})
	}
}

func TestTLSMinVersion13(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "c", testcert.Options{})
	files := []hclconfig.Certificate{{Cert: cert, Key: key}}
	l := testListener(hclconfig.ClassAsync)
	l.TLS = hclconfig.TLS{Certificates: files, MinVersion: hclconfig.TLS13}
	certs, err := certset.New([]wire.CertPEM{pemPair(t, cert, key)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tw := startWorker(t, l, http.HandlerFunc(ok200), nil, func(o *options) { o.Certificates = certs })
	if c, err := tls.Dial("tcp", tw.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Error("a TLS 1.2 handshake succeeded with min_version 1.3")
	}
	c, err := tls.Dial("tcp", tw.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("version %x", v)
	}
	c.Close()
}

func TestTLSSNI(t *testing.T) {
	tw, _ := tlsWorker(t, hclconfig.ClassAsync, http.HandlerFunc(ok200),
		[]string{"default.test"}, []string{"api.test"}, []string{"*.wild.test"})
	for sni, want := range map[string]string{
		"api.test": "api.test", "x.wild.test": "*.wild.test", "other.test": "default.test", "": "default.test",
	} {
		c, err := tls.Dial("tcp", tw.addr, &tls.Config{InsecureSkipVerify: true, ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ConnectionState().PeerCertificates[0].DNSNames[0]; got != want {
			t.Errorf("SNI %q: certificate for %s, want %s", sni, got, want)
		}
		c.Close()
	}
}

// TestTLSRotationUnderLoad: 20 clients open a new TLS connection for every
// request while the master sends new certificates twice, each time once a
// request was served with the last certificate; no handshake or request
// fails and the new certificates are served.
func TestTLSRotationUnderLoad(t *testing.T) {
	tw, certs := tlsWorker(t, hclconfig.ClassAsync, http.HandlerFunc(ok200), []string{"gen0.test"})
	var ok, failed atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 20 {
		// half over HTTP/2, half over HTTP/1.1; a new connection each time
		c := tlsClient("", false)
		if i%2 == 1 {
			c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("https://" + tw.addr + "/")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				name := resp.TLS.PeerCertificates[0].DNSNames[0]
				ok.Add(1)
				mu.Lock()
				seen[name]++
				mu.Unlock()
			}
		})
	}
	// served waits until a request was answered with name's certificate:
	// the clients run through each change.
	served := func(name string) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			mu.Lock()
			n := seen[name]
			mu.Unlock()
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no request served with %s", name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for gen := 1; gen <= 2; gen++ {
		served("gen" + string(rune('0'+gen-1)) + ".test")
		certs.Update([]wire.CertPEM{madePair(t, "gen"+string(rune('0'+gen))+".test")})
	}
	served("gen2.test")
	close(stop)
	wg.Wait()
	t.Logf("requests ok=%d failed=%d; certificates served %v", ok.Load(), failed.Load(), seen)
	if failed.Load() != 0 {
		t.Errorf("%d requests failed; first: %v", failed.Load(), firstErr.Load())
	}
	if seen["gen0.test"] == 0 || seen["gen2.test"] == 0 {
		t.Errorf("certificates served %v: want the first and the last generation", seen)
	}
}

// TestTLSDrainHTTP2: a drain answers a request on an HTTP/2 connection with
// a GOAWAY after the response, and an idle one goes away after keepalive,
// so the worker exits well before graceful_timeout.
func TestTLSDrainHTTP2(t *testing.T) {
	tw, _ := tlsWorker(t, hclconfig.ClassAsync, http.HandlerFunc(ok200), []string{"localhost"})
	c := tlsClient("localhost", true)
	resp := get(t, c, "https://"+tw.addr+"/")
	if resp.Proto != "HTTP/2.0" {
		t.Fatalf("proto %s", resp.Proto)
	}
	start := time.Now()
	tw.sigs <- syscall.SIGTERM
	// Once STOPPING=1 is out the drain has begun: a request sent before
	// that could be answered without the GOAWAY and leave the connection
	// to keepalive.
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	resp = get(t, c, "https://"+tw.addr+"/") // the kept connection still serves
	if resp.StatusCode != 200 {
		t.Errorf("during the drain: status %d", resp.StatusCode)
	}
	if err := tw.wait(t); err != nil {
		t.Fatal(err)
	}
	// keepalive is 5s and graceful_timeout 5s in testListener: the GOAWAY
	// must end the connection long before either.
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("drain with an HTTP/2 client took %v", took)
	}
}

// logBuffer collects log lines for assertions.
type logBuffer struct{ syncbuf.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// pemPair reads a pair's files as the master would.
func pemPair(t testing.TB, cert, key string) wire.CertPEM {
	t.Helper()
	c, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	return wire.CertPEM{Name: cert, Cert: string(c), Key: string(k)}
}

// madePair is a fresh pair for names.
func madePair(t *testing.T, names ...string) wire.CertPEM {
	cert, key := testcert.Make(t, testcert.Options{Names: names})
	return wire.CertPEM{Name: names[0], Cert: string(cert), Key: string(key)}
}
