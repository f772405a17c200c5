package app

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

const secret = "TOPSECRET-outside-the-root"

// staticTree makes base/www (the root) and base/outside (a secret next to
// it), with symlinks inside the root pointing in and out.
func staticTree(t testing.TB) (root string, data []byte) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "www")
	outside := filepath.Join(base, "outside")
	data = make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	files := map[string]string{
		"www/index.html":     "<h1>home</h1>",
		"www/a.txt":          "plain a",
		"www/style.css":      "body{}",
		"www/noext":          "<!DOCTYPE html><html><body>sniff me</body></html>",
		"www/data.bin":       string(data),
		"www/sub/index.html": "<p>sub</p>",
		"www/nodir/x.txt":    "x",
		"outside/secret.txt": secret,
		"outside/index.html": secret,
	}
	for name, body := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"www/in":       "a.txt",
		"www/insub":    "sub",
		"www/out":      "../outside/secret.txt",
		"www/outdir":   "../outside",
		"www/outabs":   filepath.Join(outside, "secret.txt"),
		"www/loop":     "loop",
		"www/sub/back": "../../outside/secret.txt",
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root, data
}

func staticRoute(root string) hclconfig.Route {
	return hclconfig.Route{Prefix: "/static/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: root}}
}

// rawGet sends target byte for byte, as no client library would.
func rawGet(t *testing.T, addr, method, target string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", method, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestStaticTraversal(t *testing.T) {
	root, _ := staticTree(t)
	srv := httptest.NewServer(mustNew(t, staticRoute(root), respondRoute("/", "root")))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for _, target := range []string{
		"/static/../outside/secret.txt",
		"/static/%2e%2e/outside/secret.txt",
		"/static/%2E%2E/outside/secret.txt",
		"/static/..%2foutside%2fsecret.txt",
		"/static/%2e%2e%2foutside%2fsecret.txt",
		"/static/sub%2f..%2f..%2foutside%2fsecret.txt",
		"/static/..%5coutside%5csecret.txt",
		`/static/..\outside\secret.txt`,
		"/static/a.txt%00",
		"/static/%00../outside/secret.txt",
		"/static/sub/../../outside/secret.txt",
		"/static/out",
		"/static/outabs",
		"/static/outdir/secret.txt",
		"/static/outdir/",
		"/static/sub/back",
		"/static/loop",
		"/static//../outside/secret.txt",
		"/static/....//outside/secret.txt",
	} {
		resp, body := rawGet(t, addr, "GET", target)
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("GET %s = %d, want 4xx", target, resp.StatusCode)
		}
		if strings.Contains(body, secret) {
			t.Errorf("GET %s served a file outside the root", target)
		}
	}
}

// The router refuses dot segments first; the static app and os.Root must
// hold on their own.
func TestStaticHoldsWithoutRouter(t *testing.T) {
	root, _ := staticTree(t)
	s, err := newStatic("/static/", hclconfig.Static{Root: root}, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		"/static/../outside/secret.txt",
		"/static/%2e%2e/outside/secret.txt",
		"/static/sub/../../outside/secret.txt",
		"/static/..%2foutside%2fsecret.txt",
	} {
		rec := serve(s, "GET", target)
		if rec.Code < 400 || rec.Code > 499 || strings.Contains(rec.Body.String(), secret) {
			t.Errorf("GET %s = %d, want 4xx without the secret", target, rec.Code)
		}
	}
	for _, name := range []string{"../outside/secret.txt", "sub/../../outside/secret.txt", "out", "outabs", "outdir/secret.txt"} {
		f, _, code := s.open(s.current().root, name)
		if f != nil {
			f.Close()
		}
		if code != http.StatusNotFound {
			t.Errorf("open(%q) = %d, want 404 from os.Root", name, code)
		}
	}
}

func TestStaticServes(t *testing.T) {
	root, _ := staticTree(t)
	h := mustNew(t, staticRoute(root))
	for _, tc := range []struct {
		path, body, ctype string
	}{
		{"/static/", "<h1>home</h1>", "text/html; charset=utf-8"},
		{"/static/a.txt", "plain a", "text/plain; charset=utf-8"},
		{"/static/style.css", "body{}", "text/css; charset=utf-8"},
		{"/static/noext", "<!DOCTYPE html><html><body>sniff me</body></html>", "text/html; charset=utf-8"},
		{"/static/sub/", "<p>sub</p>", "text/html; charset=utf-8"},
		{"/static/in", "plain a", ""},
		{"/static/insub/", "<p>sub</p>", "text/html; charset=utf-8"},
		{"/static//a.txt", "plain a", ""},
	} {
		rec := serve(h, "GET", tc.path)
		if rec.Code != 200 || rec.Body.String() != tc.body {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, rec.Code, rec.Body.String(), tc.body)
		}
		if ct := rec.Header().Get("Content-Type"); tc.ctype != "" && ct != tc.ctype {
			t.Errorf("GET %s Content-Type = %q, want %q", tc.path, ct, tc.ctype)
		}
	}
}

func TestStaticDirectories(t *testing.T) {
	root, _ := staticTree(t)
	h := mustNew(t, staticRoute(root))
	rec := serve(h, "GET", "/static/sub?x=1")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/static/sub/?x=1" {
		t.Errorf("GET /static/sub = %d %q, want 301 to /static/sub/?x=1", rec.Code, rec.Header().Get("Location"))
	}
	// No index, no listing, and no hint that the directory exists.
	for _, p := range []string{"/static/nodir/", "/static/nodir", "/static/missing", "/static/a.txt/"} {
		if rec := serve(h, "GET", p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
}

func TestStaticConditionalAndRange(t *testing.T) {
	root, data := staticTree(t)
	h := mustNew(t, staticRoute(root))

	first := serve(h, "GET", "/static/data.bin")
	etag, lastMod := first.Header().Get("Etag"), first.Header().Get("Last-Modified")
	if first.Code != 200 || !bytes.Equal(first.Body.Bytes(), data) || etag == "" || lastMod == "" {
		t.Fatalf("GET = %d, %d bytes, ETag %q, Last-Modified %q", first.Code, first.Body.Len(), etag, lastMod)
	}

	for name, hdr := range map[string][2]string{
		"If-None-Match":     {"If-None-Match", etag},
		"If-Modified-Since": {"If-Modified-Since", lastMod},
	} {
		req := httptest.NewRequest("GET", "/static/data.bin", nil)
		req.Header.Set(hdr[0], hdr[1])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("%s: %d with %d bytes, want 304 and none", name, rec.Code, rec.Body.Len())
		}
	}

	req := httptest.NewRequest("GET", "/static/data.bin", nil)
	req.Header.Set("Range", "bytes=100-1099")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), data[100:1100]) {
		t.Errorf("Range: %d with %d bytes, want 206 and bytes 100-1099", rec.Code, rec.Body.Len())
	}
	if got := rec.Header().Get("Content-Range"); got != "bytes 100-1099/10000" {
		t.Errorf("Content-Range = %q", got)
	}

	rec = serve(h, "HEAD", "/static/data.bin")
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "10000" {
		t.Errorf("HEAD = %d, %d bytes, length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}

	rec = serve(h, "POST", "/static/data.bin")
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d Allow %q, want 405 GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestStaticRefusesFIFO(t *testing.T) {
	root, _ := staticTree(t)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	h := mustNew(t, staticRoute(root))
	done := make(chan int, 1)
	go func() { done <- serve(h, "GET", "/static/fifo").Code }()
	select {
	case code := <-done:
		if code != http.StatusNotFound {
			t.Errorf("GET fifo = %d, want 404", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GET fifo blocked")
	}
}

// A deploy that swaps the symlink the root is configured through is
// served without a reload.
func TestStaticRootSwap(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"v1", "v2"} {
		os.Mkdir(filepath.Join(base, d), 0o755)
		os.WriteFile(filepath.Join(base, d, "index.html"), []byte(d), 0o644)
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink("v1", current); err != nil {
		t.Fatal(err)
	}
	s, err := newStatic("/", hclconfig.Static{Root: current}, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := serve(s, "GET", "/").Body.String(); got != "v1" {
		t.Fatalf("before swap: %q", got)
	}
	tmp := filepath.Join(base, "next")
	os.Symlink("v2", tmp)
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	s.checkAt.Store(0) // instead of waiting out rootRecheck
	if got := serve(s, "GET", "/").Body.String(); got != "v2" {
		t.Errorf("after swap: %q, want v2", got)
	}
}

// readFromSpy is a ResponseWriter that notes what io.Copy hands its
// ReadFrom, as net/http's writer would pass it on to sendfile.
type readFromSpy struct {
	*httptest.ResponseRecorder
	src io.Reader
}

func (s *readFromSpy) ReadFrom(src io.Reader) (int64, error) {
	s.src = src
	return io.Copy(s.ResponseRecorder, src)
}

func TestStaticKeepsReaderFromThroughAccessLog(t *testing.T) {
	root, data := staticTree(t)
	al, err := OpenAccessLog(hclconfig.AccessLog{File: filepath.Join(t.TempDir(), "access.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	h := al.Wrap(mustNew(t, staticRoute(root)))
	spy := &readFromSpy{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(spy, httptest.NewRequest("GET", "/static/data.bin", nil))
	if !bytes.Equal(spy.Body.Bytes(), data) {
		t.Fatalf("body: %d bytes, want %d", spy.Body.Len(), len(data))
	}
	src := spy.src
	if lr, ok := src.(*io.LimitedReader); ok {
		src = lr.R
	}
	if _, ok := src.(*os.File); !ok {
		t.Errorf("ReadFrom got %T, want the *os.File (or a LimitedReader over it) for sendfile", spy.src)
	}
}

func BenchmarkStatic4K(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "4k.txt"), bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	h := mustNew(b, staticRoute(root))
	req := httptest.NewRequest("GET", "/static/4k.txt", nil)
	w := newNopWriter()
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
		if w.code != 200 && w.code != 0 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// fetchBoth answers GET path on h twice, through a real net/http server
// and through the fast path, and fails unless both give the same status
// and body.
func fetchBoth(t *testing.T, h http.Handler, host, path string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Host = host
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()

	var resp FastResponse
	resp.Reset()
	if !h.(FastServer).ServeFast(&FastRequest{Method: "GET", Path: path, Host: host}, &resp) {
		t.Fatalf("GET %s%s: the fast path declined", host, path)
	}
	fbody := resp.Body
	if resp.FileFD >= 0 {
		f := os.NewFile(uintptr(resp.FileFD), "")
		fbody, _ = io.ReadAll(io.LimitReader(f, resp.FileSize))
		f.Close()
	}
	if resp.Status != res.StatusCode || string(fbody) != string(body) {
		t.Errorf("GET %s%s: net/http %d %q, fast path %d %q", host, path, res.StatusCode, body, resp.Status, fbody)
	}
	return res.StatusCode, string(body)
}

func TestStaticDotfiles(t *testing.T) {
	root, _ := staticTree(t)
	for name, body := range map[string]string{
		".env": "SECRET=1", ".git/config": "[core]", "sub/.htpasswd": "u:p",
		".well-known/security.txt": "Contact: x", ".well-known/.hidden": "no", "a.bak": "old",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(body), 0o644)
	}
	route := func(hidden ...string) http.Handler {
		r := staticRoute(root)
		r.Static.Hidden = hidden
		return mustNew(t, r)
	}
	def := route(".*") // the config's default
	for path, want := range map[string]int{
		"/static/.env": 404, "/static/.git/config": 404, "/static/.git/": 404, "/static/sub/.htpasswd": 404,
		"/static/.well-known/security.txt": 200, "/static/.well-known/.hidden": 404,
		"/static/a.txt": 200, "/static/a.bak": 200,
	} {
		if code, _ := fetchBoth(t, def, "", path); code != want {
			t.Errorf("default hidden: GET %s = %d, want %d", path, code, want)
		}
	}
	more := route(".*", "*.bak")
	if code, _ := fetchBoth(t, more, "", "/static/a.bak"); code != 404 {
		t.Errorf("hidden *.bak: GET /static/a.bak = %d, want 404", code)
	}
	none := route()
	if code, body := fetchBoth(t, none, "", "/static/.env"); code != 200 || body != "SECRET=1" {
		t.Errorf("hidden = []: GET /static/.env = %d %q, want the file", code, body)
	}
}

func TestStaticFallbackAndIndexList(t *testing.T) {
	root, _ := staticTree(t)
	os.WriteFile(filepath.Join(root, "sub", "home.htm"), []byte("home.htm"), 0o644)
	spa := staticRoute(root)
	spa.Static.Fallback = "index.html"
	spa.Static.Index = []string{"home.htm", "index.html"}
	spa.Static.Hidden = []string{".*"}
	h := mustNew(t, spa)
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/static/app/route/42", 200, "<h1>home</h1>"}, // missing: the fallback, with 200
		{"/static/a.txt", 200, "plain a"},              // present files as they are
		{"/static/sub/", 200, "home.htm"},              // the first index that exists
		{"/static/", 200, "<h1>home</h1>"},             // the second when the first is missing
		{"/static/nodir/", 200, "<h1>home</h1>"},       // a directory without an index
		{"/static/.env", 404, "404 not found\n"},       // hidden stays hidden
		{"/static/sub", 301, ""},
	} {
		code, body := fetchBoth(t, h, "", tc.path)
		if code != tc.code || body != tc.body {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	// A fallback that is itself missing is a plain 404.
	gone := staticRoute(root)
	gone.Static.Fallback = "nothere.html"
	if code, _ := fetchBoth(t, mustNew(t, gone), "", "/static/x"); code != 404 {
		t.Errorf("missing fallback: %d, want 404", code)
	}
}
