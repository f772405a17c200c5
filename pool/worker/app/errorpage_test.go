package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestErrorPagesByLevel(t *testing.T) {
	root, _ := staticTree(t)
	pages := t.TempDir()
	page := func(name, body string) string {
		p := filepath.Join(pages, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	listener404 := page("l404.html", "<p>listener 404</p>")
	host404 := page("h404.html", "<p>host 404</p>")
	route404 := page("r404.txt", "route 404")
	bad := page("502.html", "<p>upstream down</p>")

	static := staticRoute(root)
	static.ErrorPages = map[int]string{404: route404}
	dead := hclconfig.Route{Prefix: "/dead/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{"http://127.0.0.1:1"}}}
	l := hclconfig.Listener{Name: "web",
		ErrorPages: map[int]string{404: listener404, 502: bad},
		Headers:    hclconfig.Headers{Set: map[string]string{"X-Policy": "on"}},
		Routes:     []hclconfig.Route{static, dead, respondRoute("/gone", "an app's own answer")},
		Hosts: []hclconfig.Host{{Label: "h", Names: []string{"h.test"}, ErrorPages: map[int]string{404: host404},
			Routes: []hclconfig.Route{respondRoute("/x", "x")}}},
	}
	h, err := New(l, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, path, body string }{
		{"", "/nothing", "<p>listener 404</p>"},
		{"", "/static/missing", "route 404"},
		{"h.test", "/nothing", "<p>host 404</p>"},
	} {
		code, body := fetchBoth(t, h, tc.host, tc.path)
		if code != 404 || body != tc.body {
			t.Errorf("GET %s%s = %d %q, want 404 %q", tc.host, tc.path, code, body, tc.body)
		}
	}
	// A proxy's 502 on the net/http path, with its type and the policy.
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/dead/a")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 502 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" || res.Header.Get("X-Policy") != "on" {
		t.Errorf("dead upstream: %d %v", res.StatusCode, res.Header)
	}
	// The fast path's 502, as the event loop makes it.
	var resp FastResponse
	resp.Reset()
	up := h.(FastServer).FastProxies()[0]
	up.StatusFast(&resp, 502)
	if string(resp.Body) != "<p>upstream down</p>" || parseHead(t, resp.Head).Get("X-Policy") != "on" {
		t.Errorf("fast 502: %q %q", resp.Head, resp.Body)
	}
}

func TestErrorPageReadOnce(t *testing.T) {
	// A listener's page serves every route from one copy in memory.
	file := filepath.Join(t.TempDir(), "404.html")
	os.WriteFile(file, []byte("gone"), 0o644)
	var routes []hclconfig.Route
	for _, p := range []string{"/a/", "/b/", "/c/"} {
		r := respondRoute(p, p)
		r.Headers = hclconfig.Headers{Set: map[string]string{"X-Route": p}} // a scope of its own
		routes = append(routes, r)
	}
	h, err := New(hclconfig.Listener{Name: "web", ErrorPages: map[int]string{404: file}, Routes: routes}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	rt := h.(*site).def
	first := rt.scope.pages[404]
	for _, r := range rt.routes {
		if r.scope.pages[404] != first {
			t.Errorf("route %s has its own copy of the page", r.prefix)
		}
	}
}
