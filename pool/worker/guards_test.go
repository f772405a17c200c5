package worker

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestHTTPSRedirect(t *testing.T) {
	l := testListener(hclconfig.ClassAsync)
	l.RedirectHTTPS, l.HTTPSPort = true, 443
	l.Routes = []hclconfig.Route{{Prefix: "/.well-known/acme-challenge/"}}
	h := handler(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "token") }))
	for _, tc := range []struct {
		target, host, want string
	}{
		{"/a/b?x=1&y=%20", "example.com", "https://example.com/a/b?x=1&y=%20"},
		{"/", "example.com:8080", "https://example.com/"},
		{"/p", "[::1]:80", "https://[::1]/p"},
		{"/%2F..%2F", "example.com", "https://example.com/%2F..%2F"},
	} {
		r := httptest.NewRequest("POST", tc.target, nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != tc.want {
			t.Errorf("%s %s: %d %q, want 308 %q", tc.host, tc.target, w.Code, w.Header().Get("Location"), tc.want)
		}
	}

	// another port; a route that matches is served over plain HTTP
	l.HTTPSPort = 8443
	h = handler(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "token") }))
	r := httptest.NewRequest("GET", "/x", nil)
	r.Host = "example.com:8080"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Get("Location"); got != "https://example.com:8443/x" {
		t.Errorf("Location %q", got)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/acme-challenge/abc", nil))
	if w.Code != 200 || w.Body.String() != "token" {
		t.Errorf("ACME route: %d %q", w.Code, w.Body.String())
	}

	// no Host at all (HTTP/1.0)
	r = httptest.NewRequest("GET", "/x", nil)
	r.Host = ""
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("no Host: %d", w.Code)
	}
}

// upstreamLike reads the whole body the way a proxy streams it upstream,
// and answers 502 when that fails.
var upstreamLike = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			panic("want a MaxBytesError, got " + err.Error())
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	io.WriteString(w, "read "+strconv.FormatInt(n, 10))
})

func TestBodyLimit(t *testing.T) {
	l := testListener(hclconfig.ClassAsync)
	l.MaxBodyBytes = 1000
	called := false
	h := handler(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		upstreamLike(w, r)
	}))

	// a declared length over the limit never reaches the app
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 1001))))
	if w.Code != http.StatusRequestEntityTooLarge || called || w.Header().Get("Connection") != "close" {
		t.Errorf("Content-Length 1001: %d, app called %v, Connection %q", w.Code, called, w.Header().Get("Connection"))
	}

	// at the limit: served
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 1000))))
	if w.Code != 200 || w.Body.String() != "read 1000" {
		t.Errorf("Content-Length 1000: %d %q", w.Code, w.Body.String())
	}

	// unknown length (chunked): counted while read; over is a 413 whatever
	// the app answers
	for size, want := range map[int]int{1000: 200, 1001: http.StatusRequestEntityTooLarge, 100000: http.StatusRequestEntityTooLarge} {
		r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(strings.Repeat("x", size))))
		r.ContentLength = -1
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want || (want == 413 && strings.Contains(w.Body.String(), "bad gateway")) {
			t.Errorf("chunked %d bytes: %d %q, want %d", size, w.Code, w.Body.String(), want)
		}
	}

	// 0 is unlimited: no wrapper at all
	l.MaxBodyBytes = 0
	if _, wrapped := handler(l, upstreamLike).(*bodyLimit); wrapped {
		t.Error("max_body_bytes 0 still limits")
	}
}
