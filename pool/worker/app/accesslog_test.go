package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func openTestLog(t testing.TB, format string) (*AccessLog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := OpenAccessLog(hclconfig.AccessLog{File: path, Format: format})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	return al, path
}

var fixedTime = time.Date(2026, time.January, 2, 3, 4, 5, 0, time.FixedZone("", -7*3600))

// fixedClock returns start, then start+1.5ms, and so on.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := fixedTime
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(1500 * time.Microsecond)
		return now
	}
}

func createdHello() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "hello")
	})
}

func knownRequest() *http.Request {
	r := httptest.NewRequest("GET", "/x?y=1", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Host = "example.test"
	r.Header.Set("Referer", "http://ref.test/")
	r.Header.Set("User-Agent", `ua "quoted" \ `+"\x01\xff")
	return r
}

func TestAccessLogCombined(t *testing.T) {
	al, path := openTestLog(t, "combined")
	al.now = fixedClock()
	al.Wrap(createdHello()).ServeHTTP(httptest.NewRecorder(), knownRequest())
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	want := `192.0.2.1 - - [02/Jan/2026:03:04:05 -0700] "GET /x?y=1 HTTP/1.1" 201 5 "http://ref.test/" "ua \x22quoted\x22 \x5C \x01\xFF"` + "\n"
	if got := readFile(t, path); got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
}

func TestAccessLogCombinedDefaults(t *testing.T) {
	al, path := openTestLog(t, "")
	al.now = fixedClock()
	r := httptest.NewRequest("HEAD", "/", nil)
	r.RemoteAddr = "@" // a unix socket peer
	al.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "body a HEAD never sends")
	})).ServeHTTP(httptest.NewRecorder(), r)
	al.Close()
	want := `- - - [02/Jan/2026:03:04:05 -0700] "HEAD / HTTP/1.1" 200 0 "-" "-"` + "\n"
	if got := readFile(t, path); got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
}

func TestAccessLogJSON(t *testing.T) {
	al, path := openTestLog(t, "json")
	al.now = fixedClock()
	al.Wrap(createdHello()).ServeHTTP(httptest.NewRecorder(), knownRequest())
	al.Close()
	line := readFile(t, path)
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("want one line, got %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("%v in %q", err, line)
	}
	want := map[string]any{
		"time": "2026-01-02T03:04:05-07:00", "remote": "192.0.2.1", "method": "GET",
		"path": "/x", "query": "y=1", "proto": "HTTP/1.1", "status": 201.0, "bytes": 5.0,
		"duration_ms": 1.5, "referer": "http://ref.test/", "user_agent": "ua \"quoted\" \\ \x01\ufffd",
		"host": "example.test",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("keys %v, want %d of them", got, len(want))
	}
}

func TestAccessLogBuffersUntilClose(t *testing.T) {
	al, path := openTestLog(t, "combined")
	h := al.Wrap(createdHello())
	for range 100 {
		h.ServeHTTP(httptest.NewRecorder(), knownRequest())
	}
	al.mu.Lock()
	buffered := al.w.Buffered()
	al.mu.Unlock()
	if buffered == 0 && readFile(t, path) == "" {
		t.Fatal("lines neither buffered nor written")
	}
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(readFile(t, path), "\n"); n != 100 {
		t.Errorf("%d lines after Close, want 100", n)
	}
	// Requests finishing after Close are dropped, not a panic.
	h.ServeHTTP(httptest.NewRecorder(), knownRequest())
}

func TestAccessLogFlushesOnTicker(t *testing.T) {
	al, path := openTestLog(t, "combined")
	al.Wrap(createdHello()).ServeHTTP(httptest.NewRecorder(), knownRequest())
	deadline := time.Now().Add(10 * accessFlushEvery)
	for readFile(t, path) == "" {
		if time.Now().After(deadline) {
			t.Fatal("line never flushed without Close")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAccessLogReopen(t *testing.T) {
	al, path := openTestLog(t, "combined")
	h := al.Wrap(createdHello())
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), knownRequest())
	}
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	// Lines written after the rename and before the signal belong in the
	// old file, like nginx's.
	h.ServeHTTP(httptest.NewRecorder(), knownRequest())
	if err := al.Reopen(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(readFile(t, rotated), "\n"); n != 4 {
		t.Errorf("rotated file has %d lines right after Reopen, want 4", n)
	}
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), knownRequest())
	}
	al.Close()
	if n := strings.Count(readFile(t, rotated), "\n"); n != 4 {
		t.Errorf("rotated file has %d lines, want 4", n)
	}
	if n := strings.Count(readFile(t, path), "\n"); n != 2 {
		t.Errorf("new file has %d lines, want 2", n)
	}
}

// Concurrent requests across a rotation: every line lands once, whole.
func TestAccessLogReopenUnderLoad(t *testing.T) {
	al, path := openTestLog(t, "json")
	h := al.Wrap(createdHello())
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r := knownRequest()
				r.URL.Path = fmt.Sprintf("/%d/%d", w, i)
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
	time.Sleep(time.Millisecond)
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := al.Reopen(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	al.Close()
	seen := map[string]bool{}
	for _, p := range []string{rotated, path} {
		sc := bufio.NewScanner(strings.NewReader(readFile(t, p)))
		for sc.Scan() {
			var v struct{ Path string }
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatalf("torn line %q: %v", sc.Text(), err)
			}
			if seen[v.Path] {
				t.Fatalf("%s logged twice", v.Path)
			}
			seen[v.Path] = true
		}
	}
	if len(seen) != workers*each {
		t.Errorf("%d lines, want %d", len(seen), workers*each)
	}
}

// chunkWriter records each write the log issues.
type chunkWriter struct{ chunks [][]byte }

func (c *chunkWriter) Write(p []byte) (int, error) {
	c.chunks = append(c.chunks, bytes.Clone(p))
	return len(p), nil
}

func TestAccessLogNeverSplitsLines(t *testing.T) {
	al, _ := openTestLog(t, "combined")
	cw := &chunkWriter{}
	al.mu.Lock()
	al.w.Reset(cw)
	al.mu.Unlock()
	line := bytes.Repeat([]byte("x"), 999)
	line = append(line, '\n')
	for range 3 * accessBufSize / len(line) {
		al.write(line)
	}
	al.mu.Lock()
	al.w.Flush()
	al.mu.Unlock()
	if len(cw.chunks) < 3 {
		t.Fatalf("%d writes, want at least 3", len(cw.chunks))
	}
	for i, c := range cw.chunks {
		if len(c)%len(line) != 0 || c[len(c)-1] != '\n' {
			t.Errorf("write %d has %d bytes: a torn line", i, len(c))
		}
	}
}

func TestAccessLogNil(t *testing.T) {
	al, err := OpenAccessLog(hclconfig.AccessLog{})
	if err != nil || al != nil {
		t.Fatalf("OpenAccessLog(off) = %v, %v; want nil, nil", al, err)
	}
	h := respondRoute("/", "x")
	inner := newRespond(h.Respond, nil)
	if got := al.Wrap(inner); got != http.Handler(inner) {
		t.Error("nil log wrapped the handler")
	}
	if al.Reopen() != nil || al.Close() != nil {
		t.Error("nil log Reopen/Close returned an error")
	}
}

func TestAccessLogOpenErrors(t *testing.T) {
	if _, err := OpenAccessLog(hclconfig.AccessLog{File: filepath.Join(t.TempDir(), "missing", "a.log")}); err == nil {
		t.Error("missing directory accepted")
	}
	if _, err := OpenAccessLog(hclconfig.AccessLog{File: filepath.Join(t.TempDir(), "a.log"), Format: "xml"}); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestAccessLogStdout(t *testing.T) {
	al, err := OpenAccessLog(hclconfig.AccessLog{File: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if err := al.Reopen(); err != nil {
		t.Error(err)
	}
	if err := al.Close(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stdout.Stat(); err != nil {
		t.Errorf("stdout closed: %v", err)
	}
}

func TestRecorderPassesThrough(t *testing.T) {
	var _ io.ReaderFrom = (*recorder)(nil)
	var _ http.Flusher = (*recorder)(nil)
	var _ http.Hijacker = (*recorder)(nil)

	al, _ := openTestLog(t, "combined")
	flushed := false
	h := al.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the recorder: %v", err)
		}
		flushed = true
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, knownRequest())
	if !flushed || !rec.Flushed {
		t.Error("flush did not reach the writer underneath")
	}
}

func benchAccessLog(b *testing.B, format string) {
	al, _ := openTestLog(b, format)
	body := []byte("hello from hfork\n")
	h := al.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.Write(body)
	}))
	req := knownRequest()
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")
	w := newNopWriter()
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
	}
}

func BenchmarkAccessLogCombined(b *testing.B) { benchAccessLog(b, "combined") }
func BenchmarkAccessLogJSON(b *testing.B)     { benchAccessLog(b, "json") }
