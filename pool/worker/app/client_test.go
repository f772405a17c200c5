package app

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestTrustClient(t *testing.T) {
	tr := NewTrust([]string{"10.0.0.0/8", "192.0.2.7/32", hclconfig.TrustUnix})
	for _, tc := range []struct {
		peer, xff, client, before string
	}{
		{"203.0.113.1", "1.1.1.1", "203.0.113.1", ""},                              // untrusted peer: its header is forged
		{"10.0.0.1", "", "10.0.0.1", ""},                                           // trusted, no header
		{"10.0.0.1", "198.51.100.2", "198.51.100.2", ""},                           // one hop
		{"10.0.0.1", "6.6.6.6, 198.51.100.2, 10.1.1.1", "198.51.100.2", "6.6.6.6"}, // rightmost untrusted
		{"10.0.0.1", "10.2.2.2,10.3.3.3", "10.2.2.2", ""},                          // all trusted: the leftmost
		{"10.0.0.1", "6.6.6.6, junk, 10.3.3.3", "10.3.3.3", ""},                    // a bad hop ends the walk
		{"", "198.51.100.9", "198.51.100.9", ""},                                   // a trusted unix-socket peer
		{"::ffff:10.0.0.1", "2001:db8::1", "2001:db8::1", ""},                      // mapped IPv4, an IPv6 client
	} {
		client, before := tr.Client(tc.peer, tc.xff)
		if client != tc.client || before != tc.before {
			t.Errorf("Client(%q, %q) = %q, %q; want %q, %q", tc.peer, tc.xff, client, before, tc.client, tc.before)
		}
	}
	var none *Trust
	if c, _ := none.Client("10.0.0.1", "1.1.1.1"); c != "10.0.0.1" {
		t.Errorf("no trust: %q", c)
	}
}

func TestRequestIDs(t *testing.T) {
	a, b := string(AppendRequestID(nil)), string(AppendRequestID(nil))
	if len(a) != 32 || a == b || a[:16] != b[:16] {
		t.Errorf("ids %q %q", a, b)
	}
	for id, ok := range map[string]bool{"abc-123": true, "": false, "a b": false, `a"b`: false, strings.Repeat("x", 129): false} {
		if ValidRequestID(id) != ok {
			t.Errorf("ValidRequestID(%q) = %v", id, !ok)
		}
	}
}

// TestClientHandlerProxy: net/http's side of trusted_proxies. A forged
// X-Forwarded-For and X-Request-ID from an untrusted peer are dropped
// (the upstream and the access log see the peer, and a fresh ID); a
// trusted peer's are believed.
func TestClientHandlerProxy(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header }))
	defer up.Close()
	logPath := filepath.Join(t.TempDir(), "access.log")
	al, err := OpenAccessLog(hclconfig.AccessLog{File: logPath, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	for _, tc := range []struct {
		trusted             []string
		xff, id             string
		wantXFF, wantRemote string
		keepID              bool
	}{
		{[]string{"10.0.0.0/8"}, "198.51.100.7", "forged", "127.0.0.1", `"remote":"127.0.0.1"`, false},
		{[]string{"127.0.0.0/8"}, "6.6.6.6, 198.51.100.7", "from-lb", "6.6.6.6, 198.51.100.7", `"remote":"198.51.100.7"`, true},
		{nil, "198.51.100.7", "forged", "198.51.100.7, 127.0.0.1", `"remote":"127.0.0.1"`, false},
	} {
		l := hclconfig.Listener{TrustedProxies: tc.trusted, Routes: []hclconfig.Route{proxyRoute("/", up.URL)}}
		front := httptest.NewServer(ClientHandler(l, al.Wrap(mustNew(t, l.Routes[0]))))
		req, _ := http.NewRequest("GET", front.URL+"/", nil)
		req.Header.Set("X-Forwarded-For", tc.xff)
		req.Header.Set("X-Request-ID", tc.id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		front.Close()
		h := <-seen
		id := h.Get("X-Request-Id")
		if h.Get("X-Forwarded-For") != tc.wantXFF || (id == tc.id) != tc.keepID || (!tc.keepID && len(id) != 32) {
			t.Errorf("trusted %v: upstream saw X-Forwarded-For %q, X-Request-ID %q", tc.trusted, h.Get("X-Forwarded-For"), id)
		}
		al.Reopen() // flushes
		b, _ := os.ReadFile(logPath)
		lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
		last := string(lines[len(lines)-1])
		if !strings.Contains(last, tc.wantRemote) || !strings.Contains(last, `"request_id":"`+id+`"`) {
			t.Errorf("trusted %v: access log %s", tc.trusted, last)
		}
	}
}

func TestClientHandlerOnlyWhenUsed(t *testing.T) {
	next := &clientHandler{} // any comparable handler
	l := hclconfig.Listener{Routes: []hclconfig.Route{{Prefix: "/", App: hclconfig.AppRespond}}}
	if h := ClientHandler(l, next); h != http.Handler(next) {
		t.Error("wrapped a listener with no proxy, access log or trusted_proxies")
	}
	l.AccessLog.File = "-"
	if h := ClientHandler(l, next); h == http.Handler(next) {
		t.Error("did not wrap a listener with an access log")
	}
}
