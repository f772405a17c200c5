package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig/testcert"
)

// TestTLSRootOnlyKey: the key is 0600 root in a 0700 root directory, as
// certbot installs it, and the workers run as nobody. The master reads it
// and the workers serve it; a renewal by rename reaches the workers through
// the master's poll, and another through HUP, without restarting them.
func TestTLSRootOnlyKey(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	dir, err := os.MkdirTemp("", "hfork-tlskey-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "hfork")
	buildHfork(t, bin, "")
	keys := filepath.Join(dir, "live")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string) {
		certPEM, keyPEM := testcert.Make(t, testcert.Options{Names: []string{name}})
		for file, data := range map[string][]byte{"site.pem": certPEM, "site.key": keyPEM} {
			tmp := filepath.Join(keys, file+".tmp")
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(keys, file)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("gen0.test")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(keys, "site.key"), &st); err != nil || st.Uid != 0 || st.Mode&0o077 != 0 {
		t.Fatalf("key not root-only: uid %d mode %o %v", st.Uid, st.Mode, err)
	}

	port := mustFreePort(t)
	m := startMaster(t, bin, fmt.Sprintf(`
user    = "nobody"
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "https" {
  bind    = "127.0.0.1:%d"
  workers = 2
  tls {
    cert = %q
    key  = %q
  }
  route "/" {
    respond { body = "secure" }
  }
}
`, port, filepath.Join(keys, "site.pem"), filepath.Join(keys, "site.key")))
	m.waitLog(`"msg":"hfork ready"`, 1, 15*time.Second)
	pids := m.waitWorkers("https", 2)
	for _, pid := range pids {
		if uid := statusFields(t, pid)["Uid"]; !strings.HasPrefix(uid, "65534 ") {
			t.Errorf("worker %d runs as uid %q, want nobody", pid, uid)
		}
	}

	url := fmt.Sprintf("https://127.0.0.1:%d/", port)
	served := func() string {
		t.Helper()
		resp, err := newTLSClient("", false).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "secure" {
			t.Fatalf("body %q", body)
		}
		return resp.TLS.PeerCertificates[0].DNSNames[0]
	}
	// servedBy waits until both workers (new connections spread over
	// them) serve name.
	servedBy := func(name string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for n := 0; n < 8; {
			if served() == name {
				n++
			} else {
				n = 0
			}
			if time.Now().After(deadline) {
				t.Fatalf("certificate %s not served after 10s", name)
			}
		}
	}
	servedBy("gen0.test")
	write("gen1.test") // the master's poll
	servedBy("gen1.test")
	write("gen2.test")
	m.signal(syscall.SIGHUP)
	servedBy("gen2.test")
	if !strings.Contains(m.log.String(), `"msg":"certificate reloaded"`) {
		t.Error("the master did not log the renewal")
	}
	if strings.Contains(m.log.String(), "permission denied") {
		t.Errorf("something could not read a file:\n%s", m.log.String())
	}
	if now := m.waitWorkers("https", 2); !slices.Equal(sorted(now), sorted(pids)) {
		t.Errorf("workers were replaced: %v -> %v", pids, now)
	}
}
