package app

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

var quiet = slog.New(slog.DiscardHandler)

func respondRoute(prefix, body string) hclconfig.Route {
	return hclconfig.Route{Prefix: prefix, App: hclconfig.AppRespond,
		Respond: hclconfig.Respond{Status: 200, Body: body}}
}

func mustNew(t testing.TB, routes ...hclconfig.Route) http.Handler {
	t.Helper()
	h, err := New(hclconfig.Listener{Name: "web", Routes: routes}, quiet)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func serve(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestRouteLongestPrefix(t *testing.T) {
	// Deliberately shortest first: New must not rely on the config's order.
	h := mustNew(t,
		respondRoute("/", "root"),
		respondRoute("/api/", "api"),
		respondRoute("/api/v2/", "v2"),
		respondRoute("/apix", "apix"),
	)
	for _, tc := range []struct{ path, want string }{
		{"/", "root"},
		{"/index.html", "root"},
		{"/api/", "api"},
		{"/api/users", "api"},
		{"/api/v2/", "v2"},
		{"/api/v2/users?x=1", "v2"},
		{"/apix/y", "apix"},
		{"/ap", "root"},
	} {
		rec := serve(h, "GET", tc.path)
		if rec.Code != 200 || rec.Body.String() != tc.want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, rec.Code, rec.Body.String(), tc.want)
		}
	}
}

func TestRouteNotFound(t *testing.T) {
	h := mustNew(t, respondRoute("/api/", "api"))
	for _, p := range []string{"/", "/other", "/ap"} {
		if rec := serve(h, "GET", p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
	if h := mustNew(t); serve(h, "GET", "/").Code != http.StatusNotFound {
		t.Error("no routes: want 404")
	}
}

func TestRouteTrailingSlashRedirect(t *testing.T) {
	h := mustNew(t, respondRoute("/", "root"), respondRoute("/static/", "static"))
	rec := serve(h, "GET", "/static?v=1")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/static/?v=1" {
		t.Errorf("GET /static = %d Location %q, want 301 /static/?v=1", rec.Code, rec.Header().Get("Location"))
	}
	rec = serve(h, "POST", "/static")
	if rec.Code != http.StatusPermanentRedirect {
		t.Errorf("POST /static = %d, want 308", rec.Code)
	}
	// An exact route for the bare path wins over the redirect.
	h = mustNew(t, respondRoute("/static/", "tree"), respondRoute("/static", "bare"))
	if rec := serve(h, "GET", "/static"); rec.Code != 200 || rec.Body.String() != "bare" {
		t.Errorf("GET /static with a bare route = %d %q, want 200 bare", rec.Code, rec.Body.String())
	}
}

func TestRouteRefusesDotSegments(t *testing.T) {
	h := mustNew(t, respondRoute("/", "root"))
	for _, p := range []string{"/a/../b", "/./x", "/a/..", "/a/.", "/.."} {
		if rec := serve(h, "GET", p); rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, rec.Code)
		}
	}
	for _, p := range []string{"/.well-known/x", "/a..b", "/...", "/a/.b"} {
		if rec := serve(h, "GET", p); rec.Code != 200 {
			t.Errorf("GET %s = %d, want 200", p, rec.Code)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	for p, want := range map[string]bool{
		"": false, ".": true, "..": true, "/": false, "/.": true, "/..": true,
		"/a/./b": true, "/a/../b": true, "/a/": false, "/.a": false, "/a.": false,
		"/..a": false, "a/..": true, "../a": true, "/a//b": false,
	} {
		if got := hasDotSegment(p); got != want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestNewRejectsBadRoutes(t *testing.T) {
	for name, rc := range map[string]hclconfig.Route{
		"unknown app":    {Prefix: "/", App: "lambda"},
		"relative":       respondRoute("api/", "x"),
		"missing root":   {Prefix: "/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: "/nonexistent/hfork-test"}},
		"no upstream":    {Prefix: "/", App: hclconfig.AppProxy},
		"bad upstream":   {Prefix: "/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{"ftp://x"}}},
		"empty redirect": {Prefix: "/", App: hclconfig.AppRedirect},
	} {
		if _, err := New(hclconfig.Listener{Routes: []hclconfig.Route{rc}}, quiet); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

// nopWriter is the cheapest ResponseWriter, so benchmarks count the
// handler's allocations, not a recorder's.
type nopWriter struct {
	h    http.Header
	code int
}

func newNopWriter() *nopWriter                   { return &nopWriter{h: http.Header{}} }
func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) reset()                      { clear(w.h); w.code = 0 }

func BenchmarkRoute(b *testing.B) {
	h := mustNew(b,
		respondRoute("/", "root"),
		respondRoute("/api/", "api"),
		respondRoute("/api/v2/", "v2"),
		respondRoute("/static/", "static"),
		respondRoute("/old/", "old"),
		respondRoute("/health", "ok"),
	)
	paths := []string{"/", "/api/x", "/api/v2/users", "/static/a.css", "/old/page", "/health"}
	reqs := make([]*http.Request, len(paths))
	for i, p := range paths {
		reqs[i] = httptest.NewRequest("GET", p, nil)
	}
	w := newNopWriter()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w.reset()
		h.ServeHTTP(w, reqs[i%len(reqs)])
	}
}
