package app

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestHeaderPolicyFold(t *testing.T) {
	// Each level removes, sets, adds; the inner level goes last.
	p := newHeaderPolicy(
		hclconfig.Headers{Set: map[string]string{"A": "outer", "B": "outer"}, Add: map[string]string{"C": "outer", "D": "outer"}},
		hclconfig.Headers{Remove: []string{"B", "D"}, Add: map[string]string{"A": "inner", "D": "inner"}},
		hclconfig.Headers{},
	)
	h := http.Header{"A": {"app"}, "B": {"app"}, "C": {"app"}, "D": {"app"}, "E": {"app"}}
	p.apply(h)
	want := http.Header{"A": {"outer", "inner"}, "C": {"app", "outer"}, "D": {"inner"}, "E": {"app"}}
	if !equalHeader(h, want) {
		t.Errorf("applied: %v, want %v", h, want)
	}
	// The fast path's rewrite gives the same headers.
	head := []byte("HTTP/1.1 200 OK\r\nA: app\r\nB: app\r\nC: app\r\nD: app\r\nE: app\r\n")
	got := parseHead(t, p.rewriteHead(nil, head))
	if !equalHeader(got, want) {
		t.Errorf("rewritten: %v, want %v", got, want)
	}
	if newHeaderPolicy(hclconfig.Headers{}, hclconfig.Headers{}) != nil {
		t.Error("empty levels make a policy")
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func parseHead(t *testing.T, head []byte) http.Header {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(append(slices.Clip(head), "\r\n"...))), &http.Request{Method: "HEAD"})
	if err != nil {
		t.Fatalf("head %q: %v", head, err)
	}
	return res.Header
}

func TestHeaderPolicyLevels(t *testing.T) {
	// The policy of each level reaches every kind of answer, over a real
	// connection (net/http) and through the fast path.
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("a\n"), 0o644)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "secret")
		w.Header().Set("Cache-Control", "private")
		w.Write([]byte("up"))
	}))
	defer up.Close()
	l := hclconfig.Listener{Name: "web",
		Headers: hclconfig.Headers{Set: map[string]string{"Strict-Transport-Security": "max-age=63072000"}, Add: map[string]string{"X-Level": "listener"}},
		Routes: []hclconfig.Route{
			{Prefix: "/files/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: root},
				Headers: hclconfig.Headers{Set: map[string]string{"Cache-Control": "max-age=600", "Content-Type": "text/x-override"}, Remove: []string{"Etag"}}},
			{Prefix: "/api/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{up.URL}},
				Headers: hclconfig.Headers{Remove: []string{"X-Upstream"}, Set: map[string]string{"Access-Control-Allow-Origin": "*"}}},
			{Prefix: "/old/", App: hclconfig.AppRedirect, Redirect: hclconfig.Redirect{To: "/new/", Status: 301}},
			respondRoute("/hello", "hi"),
		},
		Hosts: []hclconfig.Host{{Label: "h", Names: []string{"h.test"}, Headers: hclconfig.Headers{Remove: []string{"X-Level"}, Add: map[string]string{"X-Host": "h"}},
			Routes: []hclconfig.Route{respondRoute("/", "host")}}},
	}
	h, err := New(l, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	hsts := "Strict-Transport-Security"
	for _, tc := range []struct {
		host, path string
		want       map[string]string // "" is absent
	}{
		{"", "/hello", map[string]string{hsts: "max-age=63072000", "X-Level": "listener"}},
		{"", "/nothing", map[string]string{hsts: "max-age=63072000", "X-Level": "listener"}}, // hfork's own 404
		{"", "/old/x", map[string]string{hsts: "max-age=63072000", "Location": "/new/x"}},
		{"", "/files/a.txt", map[string]string{"Cache-Control": "max-age=600", "Content-Type": "text/x-override", "Etag": "", "X-Level": "listener"}},
		{"", "/files/missing", map[string]string{"Cache-Control": "max-age=600", "Content-Type": "text/x-override"}},
		{"", "/api/x", map[string]string{"X-Upstream": "", "Cache-Control": "private", "Access-Control-Allow-Origin": "*", hsts: "max-age=63072000"}},
		{"h.test", "/", map[string]string{"X-Level": "", "X-Host": "h", hsts: "max-age=63072000"}},
		{"h.test", "/nothing", map[string]string{"X-Level": "", "X-Host": "h"}},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		var fh http.Header
		var fresp FastResponse
		fresp.Reset()
		if h.(FastServer).ServeFast(&FastRequest{Method: "GET", Path: tc.path, Host: tc.host, Forwardable: true}, &fresp) && fresp.Proxy == nil {
			fh = parseHead(t, fresp.Head)
			if fresp.FileFD >= 0 {
				os.NewFile(uintptr(fresp.FileFD), "").Close()
			}
		}
		for k, v := range tc.want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", tc.host, tc.path, k, got, v)
			}
			if fh != nil && fh.Get(k) != v {
				t.Errorf("%s %s, fast path: %s = %q, want %q", tc.host, tc.path, k, fh.Get(k), v)
			}
		}
		if strings.HasPrefix(tc.path, "/api/") {
			continue
		}
		if fh == nil {
			t.Errorf("%s %s: the fast path declined", tc.host, tc.path)
		}
	}
}

func TestAppendVary(t *testing.T) {
	// The loop's Vary for a proxied answer follows streamCoding's rules.
	sc, err := newScope(nil, []level{{compress: hclconfig.Compress{Encodings: []string{"gzip"}, Types: []string{"text/*"}, MinSize: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	p := answerPolicy(sc)
	set := answerPolicy(&scope{comp: sc.comp, headers: newHeaderPolicy(hclconfig.Headers{Set: map[string]string{"Vary": "Cookie"}})})
	for _, tc := range []struct {
		p       *HeaderPolicy
		code    int
		ctype   string
		enc     bool
		ranged  bool
		length  int64
		varyAE  bool
		want    bool
		comment string
	}{
		{p, 200, "text/html", false, false, -1, false, true, "chunked text"},
		{p, 200, "text/html", false, false, 500, false, true, "long enough"},
		{p, 200, "text/html", false, false, 50, false, false, "under min_size"},
		{p, 200, "image/png", false, false, -1, false, false, "not a type it compresses"},
		{p, 200, "text/html", true, false, -1, false, false, "already encoded"},
		{p, 206, "text/html", false, true, -1, false, false, "partial"},
		{p, 304, "text/html", false, false, -1, false, false, "not modified"},
		{p, 200, "text/html", false, false, -1, true, false, "Vary names it already"},
		{set, 200, "text/html", false, false, -1, false, false, "the policy sets Vary"},
		{nil, 200, "text/html", false, false, -1, false, false, "no policy"},
	} {
		got := len(tc.p.AppendVary(nil, tc.code, tc.ctype, tc.enc, tc.ranged, tc.length, tc.varyAE)) > 0
		if got != tc.want {
			t.Errorf("%s: Vary %v, want %v", tc.comment, got, tc.want)
		}
	}
}
