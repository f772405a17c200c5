package app

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// cachedStatic is a static app at "/" over root that keeps a file's
// answer as soon as it served it once, not a settle time later.
func cachedStatic(t *testing.T, c hclconfig.Static) *static {
	t.Helper()
	s, err := newStatic("/", c, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.settle = 0
	return s
}

// fastAndSlow answers GET path on s through the fast path and through
// ServeHTTP, and fails unless both give the same status, body and the
// headers a cache could get wrong. hit says the fast answer came from the
// cache.
func fastAndSlow(t *testing.T, s *static, path string) (code int, body string, hit bool) {
	t.Helper()
	sr := s.current()
	before := sr.cache.hits.Load()
	var resp FastResponse
	resp.Reset()
	if !s.serveFast(&FastRequest{Method: "GET", Path: path}, &resp) {
		t.Fatalf("GET %s: the fast path declined", path)
	}
	hit = sr.cache.hits.Load() > before
	fbody := resp.Body
	if resp.FileFD >= 0 {
		f := os.NewFile(uintptr(resp.FileFD), "")
		fbody, _ = io.ReadAll(io.LimitReader(f, resp.FileSize))
		f.Close()
	}
	fh, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(append(bytes.Clone(resp.Head), "\r\n"...))), nil)
	if err != nil {
		t.Fatalf("GET %s: fast head %q: %v", path, resp.Head, err)
	}
	rec := serve(s, "GET", path)
	if resp.Status != rec.Code || string(fbody) != rec.Body.String() {
		t.Fatalf("GET %s: net/http %d %q, fast path %d %q (hit %v)", path, rec.Code, rec.Body, resp.Status, fbody, hit)
	}
	for _, k := range []string{"Content-Length", "Content-Type", "Etag", "Last-Modified"} {
		if got, want := fh.Header.Get(k), rec.Header().Get(k); got != want {
			t.Errorf("GET %s: %s %q on the fast path, %q from net/http (hit %v)", path, k, got, want, hit)
		}
	}
	return resp.Status, string(fbody), hit
}

// Every change to a kept file, or to a directory on its path, shows on
// the very next request.
func TestStaticCacheFollowsTheFile(t *testing.T) {
	root, _ := staticTree(t)
	f := filepath.Join(root, "f.txt")
	old := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	write := func(body string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if !mtime.IsZero() {
			if err := os.Chtimes(f, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := cachedStatic(t, hclconfig.Static{Root: root, Hidden: []string{".*"}})
	step := func(what, path string, code int, body string, hit bool) {
		t.Helper()
		gotCode, gotBody, gotHit := fastAndSlow(t, s, path)
		if gotCode != code || (code == 200 && gotBody != body) || gotHit != hit {
			t.Fatalf("%s: GET %s = %d %q hit %v, want %d %q hit %v", what, path, gotCode, gotBody, gotHit, code, body, hit)
		}
	}
	write("aaaa", old)
	step("first", "/f.txt", 200, "aaaa", false)
	step("kept", "/f.txt", 200, "aaaa", true)

	// In place, same size: the write may fall in the ctime tick the entry
	// holds, which cacheSettle guards against in service; here the mtime
	// moves instead.
	write("bbbb", old.Add(time.Second))
	step("same size, new content", "/f.txt", 200, "bbbb", false)
	step("kept again", "/f.txt", 200, "bbbb", true)
	write("ccccc", time.Time{})
	step("new size", "/f.txt", 200, "ccccc", false)

	tmp := filepath.Join(root, "f.tmp")
	if err := os.WriteFile(tmp, []byte("dddd"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(tmp, old, old)
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	step("replaced by rename", "/f.txt", 200, "dddd", false)
	step("kept after rename", "/f.txt", 200, "dddd", true)

	// Made a symlink out of the root, to a file of the same size.
	os.WriteFile(filepath.Join(root, "..", "outside", "four.txt"), []byte("SECR"), 0o644)
	os.Remove(f)
	if err := os.Symlink("../outside/four.txt", f); err != nil {
		t.Fatal(err)
	}
	step("a symlink out of the root", "/f.txt", 404, "", false)
	os.Remove(f)
	step("deleted", "/f.txt", 404, "", false)

	// A directory on the path moved out of the root and a symlink put in
	// its place: the file itself, its inode and times, did not change.
	dir := filepath.Join(root, "d")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "g.txt"), []byte("in d"), 0o644)
	step("nested", "/d/g.txt", 200, "in d", false)
	step("nested kept", "/d/g.txt", 200, "in d", true)
	moved := filepath.Join(root, "..", "outside", "d")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/d", dir); err != nil {
		t.Fatal(err)
	}
	step("its directory a symlink out of the root", "/d/g.txt", 404, "", false)

	// Symlinks inside the root serve as ever, but are never kept: the
	// stat walk would not see where they lead.
	step("symlink in the root", "/in", 200, "plain a", false)
	step("symlink in the root again", "/in", 200, "plain a", false)
	// Hidden files stay hidden, however often asked.
	os.WriteFile(filepath.Join(root, ".env"), []byte("SECRET"), 0o644)
	step("hidden", "/.env", 404, "", false)
	step("hidden again", "/.env", 404, "", false)
}

// In service a file is kept only once its ctime is older than a write
// could share with it: a file written just now is read anew each time,
// so rewriting it within the same clock tick cannot go unseen.
func TestStaticCacheWaitsForSettledFiles(t *testing.T) {
	root := t.TempDir()
	f := filepath.Join(root, "new.txt")
	os.WriteFile(f, []byte("one"), 0o644)
	s, err := newStatic("/", hclconfig.Static{Root: root}, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, body, hit := fastAndSlow(t, s, "/new.txt"); body != "one" || hit {
			t.Fatalf("fresh file: %q hit %v", body, hit)
		}
	}
	if err := os.WriteFile(f, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := fastAndSlow(t, s, "/new.txt"); body != "two" {
		t.Fatalf("rewritten within the tick: %q, want two", body)
	}
	if n := len(s.current().cache.m); n != 0 {
		t.Errorf("%d entries kept of files younger than cacheSettle", n)
	}
}

// A root swapped under the configured path serves the new tree at once,
// and the old root's entries are let go.
func TestStaticCacheRootSwap(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"v1", "v2"} {
		os.Mkdir(filepath.Join(base, d), 0o755)
		os.WriteFile(filepath.Join(base, d, "index.html"), []byte(d), 0o644)
	}
	current := filepath.Join(base, "current")
	os.Symlink("v1", current)
	s := cachedStatic(t, hclconfig.Static{Root: current})
	fastAndSlow(t, s, "/")
	if _, body, hit := fastAndSlow(t, s, "/"); body != "v1" || !hit {
		t.Fatalf("before the swap: %q hit %v, want v1 from the cache", body, hit)
	}
	old := s.current()
	tmp := filepath.Join(base, "next")
	os.Symlink("v2", tmp)
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	s.checkAt.Store(0) // instead of waiting out rootRecheck
	if _, body, hit := fastAndSlow(t, s, "/"); body != "v2" || hit {
		t.Fatalf("after the swap: %q hit %v, want v2 read anew", body, hit)
	}
	if n := len(old.cache.m); n != 0 || old.cache.bytes != 0 {
		t.Errorf("the replaced root still keeps %d entries, %d bytes", n, old.cache.bytes)
	}
}

// What is never kept: large files, an index that is not the first name,
// fallback answers; and the entries stay within their bounds.
func TestStaticCacheBounds(t *testing.T) {
	root, _ := staticTree(t)
	os.WriteFile(filepath.Join(root, "large.bin"), make([]byte, cacheFileMax+1), 0o644)
	s := cachedStatic(t, hclconfig.Static{Root: root, Index: []string{"home.htm", "index.html"}, Fallback: "a.txt"})
	for _, path := range []string{"/large.bin", "/", "/missing"} {
		fastAndSlow(t, s, path)
		if _, _, hit := fastAndSlow(t, s, path); hit {
			t.Errorf("GET %s was kept", path)
		}
	}
	// The first index name is kept under the directory's path.
	os.WriteFile(filepath.Join(root, "sub", "home.htm"), []byte("home"), 0o644)
	fastAndSlow(t, s, "/sub/")
	if _, body, hit := fastAndSlow(t, s, "/sub/"); body != "home" || !hit {
		t.Errorf("GET /sub/ = %q hit %v, want home.htm from the cache", body, hit)
	}

	many := filepath.Join(t.TempDir(), "many")
	os.Mkdir(many, 0o755)
	for i := range cacheEntries + 20 {
		os.WriteFile(filepath.Join(many, fmt.Sprint(i)), []byte(strings.Repeat("x", i%50)), 0o644)
	}
	m := cachedStatic(t, hclconfig.Static{Root: many})
	for i := range cacheEntries + 20 {
		var resp FastResponse
		resp.Reset()
		if !m.serveFast(&FastRequest{Method: "GET", Path: fmt.Sprint("/", i)}, &resp) || resp.Status != 200 {
			t.Fatalf("GET /%d: %d", i, resp.Status)
		}
	}
	c := &m.current().cache
	if n := len(c.m); n == 0 || n > cacheEntries {
		t.Errorf("%d entries kept, want 1 to %d", n, cacheEntries)
	}
	if b := cacheBytes.Load(); b > cacheBudget || c.bytes > b {
		t.Errorf("%d bytes kept by all roots, %d by this one; the budget is %d", b, c.bytes, cacheBudget)
	}
}

// A kept answer costs its stats and nothing on the heap.
func TestStaticCacheHitAllocs(t *testing.T) {
	root, _ := staticTree(t)
	s := cachedStatic(t, hclconfig.Static{Root: root})
	req := &FastRequest{Method: "GET", Path: "/sub/index.html"}
	var resp FastResponse
	resp.Reset()
	s.serveFast(req, &resp)
	allocs := testing.AllocsPerRun(100, func() {
		resp.Reset()
		if !s.serveFast(req, &resp) || resp.FileFD >= 0 {
			t.Fatal("not answered from the cache")
		}
	})
	if allocs != 0 {
		t.Errorf("a cache hit allocates %.1f times", allocs)
	}
}

// Routes swapped in a running worker serve their own root from their own
// cache at once; closing the old routes gives their bytes back.
func TestStaticCacheSwappedRoutes(t *testing.T) {
	one, two := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(one, "x.txt"), []byte("one"), 0o644)
	os.WriteFile(filepath.Join(two, "x.txt"), []byte("two"), 0o644)
	build := func(root string) (http.Handler, *static) {
		h := mustNew(t, hclconfig.Route{Prefix: "/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: root}})
		s := h.(*site).all[0].routes[0].h.(*static)
		s.settle = 0
		return h, s
	}
	get := func(h http.Handler) string {
		var resp FastResponse
		resp.Reset()
		if !h.(FastServer).ServeFast(&FastRequest{Method: "GET", Path: "/x.txt"}, &resp) {
			t.Fatal("the fast path declined")
		}
		return string(resp.Body)
	}
	h1, s1 := build(one)
	get(h1)
	if got := get(h1); got != "one" || s1.current().cache.hits.Load() != 1 {
		t.Fatalf("first routes: %q, %d hits", got, s1.current().cache.hits.Load())
	}
	kept := cacheBytes.Load()
	h2, _ := build(two)
	if got := get(h2); got != "two" {
		t.Fatalf("swapped routes: %q, want two", got)
	}
	after := cacheBytes.Load()
	Close(h1)
	if b := cacheBytes.Load(); b >= after || len(s1.current().cache.m) != 0 {
		t.Errorf("closing the old routes: %d bytes kept before, %d after (first routes alone %d)", after, b, kept)
	}
}

// A file whose body is not kept still has its head kept, checked against
// the stat of its open: a change of times, size or (sniffed) type shows
// on the next request.
func TestStaticCacheKeepsHeads(t *testing.T) {
	root := t.TempDir()
	big := filepath.Join(root, "big")
	html := []byte("<!DOCTYPE html><html>" + strings.Repeat(" ", cacheFileMax))
	os.WriteFile(big, html, 0o644)
	old := time.Date(2021, 5, 6, 7, 8, 9, 10, time.UTC)
	os.Chtimes(big, old, old)
	s := cachedStatic(t, hclconfig.Static{Root: root})
	c := &s.current().cache
	fastAndSlow(t, s, "/big")
	if len(c.heads) != 1 || len(c.m) != 0 {
		t.Fatalf("after one answer: %d heads, %d whole answers kept; want 1, 0", len(c.heads), len(c.m))
	}
	kept := c.heads["big"].head
	fastAndSlow(t, s, "/big")
	if &c.heads["big"].head[0] != &kept[0] {
		t.Fatal("the second answer made a new head")
	}
	// Same size, another type and time: fastAndSlow compares the
	// Content-Type, Etag and Last-Modified with net/http's.
	bin := bytes.Clone(html)
	copy(bin, "\x00\x01\x02\x03")
	os.WriteFile(big, bin, 0o644)
	os.Chtimes(big, old.Add(time.Hour), old.Add(time.Hour))
	fastAndSlow(t, s, "/big")
	os.WriteFile(big, html[:len(html)-1], 0o644)
	fastAndSlow(t, s, "/big")
}

// HTTP/2 streams answer from several goroutines at once: each answer is
// a whole version of the file, never a mix, while it is rewritten.
func TestStaticCacheConcurrent(t *testing.T) {
	root := t.TempDir()
	f := filepath.Join(root, "f.txt")
	versions := map[string]bool{}
	for i := range 20 {
		versions[strings.Repeat(string(rune('a'+i)), 100+i)] = true
	}
	os.WriteFile(f, []byte(strings.Repeat("a", 100)), 0o644)
	s := cachedStatic(t, hclconfig.Static{Root: root})
	done := make(chan error)
	for range 4 {
		go func() {
			var err error
			for range 300 {
				var resp FastResponse
				resp.Reset()
				if !s.serveFast(&FastRequest{Method: "GET", Path: "/f.txt"}, &resp) {
					err = fmt.Errorf("declined")
					break
				}
				body := resp.Body
				if resp.FileFD >= 0 {
					fh := os.NewFile(uintptr(resp.FileFD), "")
					body, _ = io.ReadAll(io.LimitReader(fh, resp.FileSize))
					fh.Close()
				}
				// Each version replaces the last by rename: every answer,
				// kept or read, is one of them, whole.
				if resp.Status != 200 || !versions[string(body)] {
					err = fmt.Errorf("answer %d %q is no version of the file", resp.Status, body)
					break
				}
			}
			done <- err
		}()
	}
	for i := range 20 {
		tmp := filepath.Join(root, "f.tmp")
		os.WriteFile(tmp, []byte(strings.Repeat(string(rune('a'+i)), 100+i)), 0o644)
		os.Rename(tmp, f)
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
