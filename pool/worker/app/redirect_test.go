package app

import (
	"net/http"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func redirectRoute(prefix, to string, status int) hclconfig.Route {
	return hclconfig.Route{Prefix: prefix, App: hclconfig.AppRedirect,
		Redirect: hclconfig.Redirect{To: to, Status: status}}
}

func TestRedirect(t *testing.T) {
	for _, tc := range []struct {
		prefix, to string
		status     int
		target     string
		wantCode   int
		wantLoc    string
	}{
		{"/old/", "/new/", 301, "/old/a/b?x=1", 301, "/new/a/b?x=1"},
		{"/old/", "/new/", 301, "/old/", 301, "/new/"},
		{"/old/", "/new/", 308, "/old/sp%20ace", 308, "/new/sp%20ace"},
		{"/old/", "https://example.com/", 301, "/old/a", 301, "https://example.com/a"},
		{"/old/", "/landing", 302, "/old/a?x=1", 302, "/landing?x=1"},
		{"/old/", "/n?src=old", 302, "/old/a?x=1", 302, "/n?src=old&x=1"},
		{"/old", "/new/", 301, "/old/a", 301, "/new/"},
		{"/old/", "/new/", 0, "/old/a", http.StatusFound, "/new/a"},
		// Never a protocol-relative "//host" made of To and the path.
		{"/old/", "/", 301, "/old//evil.example/x", 301, "/evil.example/x"},
	} {
		h := mustNew(t, redirectRoute(tc.prefix, tc.to, tc.status))
		rec := serve(h, "GET", tc.target)
		if rec.Code != tc.wantCode || rec.Header().Get("Location") != tc.wantLoc {
			t.Errorf("%s → %s: GET %s = %d %q, want %d %q", tc.prefix, tc.to, tc.target,
				rec.Code, rec.Header().Get("Location"), tc.wantCode, tc.wantLoc)
		}
	}
}

func TestRedirectRejectsNon3xx(t *testing.T) {
	if _, err := New(hclconfig.Listener{Routes: []hclconfig.Route{redirectRoute("/", "/x", 200)}}, quiet); err == nil {
		t.Error("status 200 accepted")
	}
}
