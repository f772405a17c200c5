package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// bufferedRoute is a proxy route to up with request buffering on, mem
// bytes in memory and the rest in dir.
func bufferedRoute(up string, mem int64, dir string) hclconfig.Route {
	rt := proxyRoute("/", up)
	rt.Proxy.RequestBuffering, rt.Proxy.BodyBufferSize, rt.Proxy.BodyTempDir = true, mem, dir
	return rt
}

// hashUpstream answers each request with its body's length and SHA-256,
// and reports the request's framing on seen.
func hashUpstream(t *testing.T, seen chan<- *http.Request) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		if seen != nil {
			seen <- r
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	}))
	t.Cleanup(up.Close)
	return up
}

func bodySum(b []byte) string {
	h := sha256.Sum256(b)
	return fmt.Sprintf("%d %s", len(b), hex.EncodeToString(h[:]))
}

// openIn lists this process's descriptors open on files in dir.
func openIn(dir string) []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			out = append(out, target)
		}
	}
	return out
}

// waitClosed waits up to 10s until no descriptor is open in dir, and
// returns those still open.
func waitClosed(t *testing.T, dir string) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		open := openIn(dir)
		if len(open) == 0 || time.Now().After(deadline) {
			return open
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBufferChunkedGoesWithLength: a chunked body reaches the upstream
// whole, with a Content-Length, from memory and from a file alike, and no
// file stays open or on disk.
func TestBufferChunkedGoesWithLength(t *testing.T) {
	seen := make(chan *http.Request, 1)
	up := hashUpstream(t, seen)
	dir := t.TempDir()
	front := httptest.NewServer(mustNew(t, bufferedRoute(up.URL, 1<<10, dir)))
	defer front.Close()
	for _, size := range []int{0, 1, 1 << 10, 1<<10 + 1, 200 << 10} {
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		// A reader of unknown length makes the client send it chunked.
		resp, err := http.Post(front.URL+"/up", "application/octet-stream", io.MultiReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != bodySum(body) {
			t.Errorf("%d bytes: upstream got %q, want %q", size, got, bodySum(body))
		}
		r := <-seen
		if r.ContentLength != int64(size) || len(r.TransferEncoding) != 0 {
			t.Errorf("%d bytes: upstream saw Content-Length %d, Transfer-Encoding %q", size, r.ContentLength, r.TransferEncoding)
		}
		// The answer may reach the client before the handler lets go.
		if open := waitClosed(t, dir); len(open) != 0 {
			t.Errorf("%d bytes: still open: %v", size, open)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%s holds %d files", dir, len(ents))
	}
}
