package app

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestBufferReadTimeoutBounds: the listener's read_timeout bounds a
// buffered body as a whole, even when each read brings something well
// within body_timeout; the answer is 408 and no upstream saw the request.
func TestBufferReadTimeoutBounds(t *testing.T) {
	var seen atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen.Add(1) }))
	defer up.Close()
	rt := bufferedRoute(up.URL, 0, "")
	rt.Proxy.BodyTimeout = time.Minute
	h, err := New(hclconfig.Listener{Name: "web", Routes: []hclconfig.Route{rt}, ReadTimeout: 300 * time.Millisecond}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	defer front.Close()
	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
	// A byte every 20ms: 20s for the whole body, far past read_timeout.
	answered := make(chan *http.Response, 1)
	go func() {
		resp, _ := http.ReadResponse(bufio.NewReader(c), nil)
		answered <- resp
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var resp *http.Response
	for resp == nil {
		select {
		case resp = <-answered:
		case <-tick.C:
			c.Write([]byte("x"))
		}
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// TestBufferHeldUntilClosed: a body's buffer is not reused while a reader
// the transport was given is open, even after the exchange ended, and a
// reader reads the body whatever order the holds are dropped in.
func TestBufferHeldUntilClosed(t *testing.T) {
	bs := newBodyBuffers(hclconfig.Proxy{BodyBufferSize: 64}, 0)
	body := "a small body that fits in memory"
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.ContentLength = -1
	b, err := bs.read(httptest.NewRecorder(), r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.attach(r)
	if r.ContentLength != int64(len(body)) || r.GetBody == nil {
		t.Fatalf("attached: length %d, GetBody %v", r.ContentLength, r.GetBody != nil)
	}
	first, _ := r.GetBody()
	second, _ := r.GetBody()
	r.Body.Close() // ReverseProxy's Close reaches nothing
	b.release()    // the handler is done
	if n := b.refs.Load(); n != 2 {
		t.Fatalf("%d holds after the handler, want the 2 readers'", n)
	}
	for i, rd := range []io.ReadCloser{first, second} {
		got, _ := io.ReadAll(rd)
		if string(got) != body {
			t.Errorf("reader %d: %q", i, got)
		}
		rd.Close()
		rd.Close() // the transport and ReverseProxy may both close
	}
	if n := b.refs.Load(); n != 0 {
		t.Errorf("%d holds after every reader closed", n)
	}
}

// TestBufferLimits: a read past max_body_bytes (as the worker's guard
// fails it) is a 413, a broken body a 400, and nothing is kept.
func TestBufferLimits(t *testing.T) {
	bs := newBodyBuffers(hclconfig.Proxy{BodyBufferSize: 16, BodyTempDir: t.TempDir()}, 0)
	for _, tc := range []struct {
		body io.Reader
		code int
	}{
		{io.MultiReader(strings.NewReader(strings.Repeat("x", 40)), errReader{&http.MaxBytesError{Limit: 40}}), 413},
		{io.MultiReader(strings.NewReader("partial"), errReader{io.ErrUnexpectedEOF}), 400},
	} {
		r := httptest.NewRequest("POST", "/", tc.body)
		r.ContentLength = -1
		_, err := bs.read(httptest.NewRecorder(), r, time.Now())
		var be *bodyError
		if !errors.As(err, &be) || be.code != tc.code {
			t.Errorf("err %v, want status %d", err, tc.code)
		}
	}
	if open := openIn(bs.dir); len(open) != 0 {
		t.Errorf("still open: %v", open)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// BenchmarkProxySmallPost is a 200-byte POST through the proxy to a
// loopback upstream, buffered and streamed: the handler's cost, client
// side excluded.
func BenchmarkProxySmallPost(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	body := strings.Repeat("k=v&", 50)
	for _, buffered := range []bool{true, false} {
		name := "streamed"
		if buffered {
			name = "buffered"
		}
		b.Run(name, func(b *testing.B) {
			rt := proxyRoute("/", up.URL)
			rt.Proxy.RequestBuffering = buffered
			h := mustNew(b, rt)
			rd := strings.NewReader(body)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				r := httptest.NewRequest("POST", "/form", nil)
				r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
				clear(w.h)
				h.ServeHTTP(w, r)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status, with
// read deadlines as net/http's own writer has them.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) SetReadDeadline(time.Time) error { return nil }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestProxyExpectNotForwarded: with buffering on or off, the client's
// Expect: 100-continue is answered by hfork's own server (on the first
// read of the body) and the upstream never sees it.
func TestProxyExpectNotForwarded(t *testing.T) {
	seen := make(chan *http.Request, 1)
	up := hashUpstream(t, seen)
	for _, buffered := range []bool{true, false} {
		rt := proxyRoute("/", up.URL)
		rt.Proxy.RequestBuffering = buffered
		front := httptest.NewServer(mustNew(t, rt))
		c, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusContinue {
			t.Fatalf("buffered %v: %v %v before the body, want 100", buffered, resp, err)
		}
		io.WriteString(c, "body")
		if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("buffered %v: %v %v", buffered, resp, err)
		}
		if r := <-seen; r.Header.Get("Expect") != "" {
			t.Errorf("buffered %v: upstream saw Expect %q", buffered, r.Header.Get("Expect"))
		}
		c.Close()
		front.Close()
	}
}
