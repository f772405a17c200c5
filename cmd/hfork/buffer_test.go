package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request buffering on proxy routes, through a real master and worker in
// front of upstreams that serve one request at a time, as a sync worker
// does.

// syncUpstream accepts one connection at a time, reads one request whole
// and answers it with the SHA-256 of its body, then closes: a sync worker
// behind the proxy. It never sends "100 Continue". It counts the requests
// it saw (their head arrived) and keeps the last head.
type syncUpstream struct {
	ln   net.Listener
	seen atomic.Int64
	mu   sync.Mutex
	last *http.Request // by mu
}

func startSyncUpstream(t *testing.T) *syncUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &syncUpstream{ln: ln}
	go u.serve()
	t.Cleanup(func() { ln.Close() })
	return u
}

func (u *syncUpstream) serve() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			u.seen.Add(1)
			u.mu.Lock()
			u.last = req
			u.mu.Unlock()
			h := sha256.New()
			n, err := io.Copy(h, req.Body)
			answer := fmt.Sprintf("%d %s", n, hex.EncodeToString(h.Sum(nil)))
			if err != nil {
				answer = "body: " + err.Error()
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(answer), answer)
		}
		c.Close()
	}
}

func (u *syncUpstream) addr() string { return u.ln.Addr().String() }

// lastHead is the head of the last request the upstream read.
func (u *syncUpstream) lastHead() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func sum(body []byte) string {
	h := sha256.Sum256(body)
	return fmt.Sprintf("%d %s", len(body), hex.EncodeToString(h[:]))
}

// bufferConfig proxies /up/ to up (buffered; 4 KiB in memory, the rest in
// tmp), /stream/ to up unbuffered, and /retry/ to a dead port (never
// marked down, so every request tries it first) and then to second, with
// max_body_bytes 1 MiB.
func bufferConfig(port int, up, second, dead, tmp string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }
listener "web" {
  bind           = "127.0.0.1:%d"
  workers        = 1
  max_body_bytes = "1MiB"
  route "/up/" {
    proxy {
      upstream         = "http://%s"
      body_buffer_size = "4KiB"
      body_temp_dir    = %q
      body_timeout     = "2s"
    }
  }
  route "/stream/" {
    proxy {
      upstream          = "http://%s"
      request_buffering = false
    }
  }
  route "/retry/" {
    proxy {
      upstream = ["http://%s", "http://%s"]
      policy    = "first"
      retries   = 1
      max_fails = 0
    }
  }
}
`, port, up, tmp, up, dead, second)
}

// rawExchange sends head, then body, on a new connection and reads the
// answer.
func rawExchange(t *testing.T, addr, head string, body []byte) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	c.Write(body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// chunk is body as one chunk of a chunked body.
func chunk(body []byte) []byte {
	return append(append([]byte(strconv.FormatInt(int64(len(body)), 16)+"\r\n"), body...), "\r\n"...)
}

func TestRequestBuffering(t *testing.T) {
	up, second := startSyncUpstream(t), startSyncUpstream(t)
	dead := fmt.Sprintf("127.0.0.1:%d", mustFreePort(t))
	tmp := t.TempDir()
	port := mustFreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	m := startMaster(t, "", bufferConfig(port, up.addr(), second.addr(), dead, tmp))
	m.waitLog(`"msg":"worker ready"`, 1, 15*time.Second)
	worker := m.waitWorkers("web", 1)[0]

	// Each case counts the upstream's requests from here.
	t.Run("slow uploads do not hold the upstream", func(t *testing.T) {
		testSlowUploads(t, addr, up)
	})
	t.Run("chunked over max_body_bytes", func(t *testing.T) {
		before := up.seen.Load()
		big := make([]byte, 256<<10)
		head := "POST /up/big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		var body []byte
		for range 5 { // 1.25 MiB in 256 KiB chunks
			body = append(body, chunk(big)...)
		}
		resp, _ := rawExchange(t, addr, head, append(body, "0\r\n\r\n"...))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
		resp, _ = rawExchange(t, addr, "POST /up/big HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("declared length over the limit: status %d, want 413", resp.StatusCode)
		}
		if n := up.seen.Load() - before; n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})
	t.Run("expect 100-continue", func(t *testing.T) {
		testExpectContinue(t, addr, up)
	})
	t.Run("spills to an unlinked file", func(t *testing.T) {
		testSpill(t, addr, worker, tmp)
	})
	t.Run("body too slow", func(t *testing.T) {
		before := up.seen.Load()
		// 10 of 100 bytes, then nothing: body_timeout (2s) ends it, and
		// the connection closes after the answer.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		io.WriteString(c, "POST /up/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("after the 408: read %d, %v; want the connection closed", n, err)
		}
		if n := up.seen.Load() - before; n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})
	t.Run("retry to a second upstream", func(t *testing.T) {
		body := []byte(strings.Repeat("retried body ", 1000))
		head := "PUT /retry/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		resp, got := rawExchange(t, addr, head, append(chunk(body), "0\r\n\r\n"...))
		if resp.StatusCode != 200 || got != sum(body) {
			t.Errorf("PUT: status %d body %q, want 200 %q", resp.StatusCode, got, sum(body))
		}
		if r := second.lastHead(); r == nil || r.ContentLength != int64(len(body)) || len(r.TransferEncoding) != 0 {
			t.Errorf("second upstream's request: %+v, want Content-Length %d", r, len(body))
		}
		// POST is not idempotent: it is never sent twice.
		before := second.seen.Load()
		head = "POST /retry/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
		if resp, _ := rawExchange(t, addr, head, []byte("hello")); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("POST: status %d, want 502", resp.StatusCode)
		}
		if n := second.seen.Load() - before; n != 0 {
			t.Errorf("POST went to the second upstream %d times", n)
		}
	})
	t.Run("request_buffering off streams", func(t *testing.T) {
		body := []byte("streamed as it came")
		head := "POST /stream/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		resp, got := rawExchange(t, addr, head, append(chunk(body), "0\r\n\r\n"...))
		if resp.StatusCode != 200 || got != sum(body) {
			t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, got, sum(body))
		}
		if r := up.lastHead(); r == nil || len(r.TransferEncoding) == 0 || r.TransferEncoding[0] != "chunked" {
			t.Errorf("upstream's request: %+v, want it chunked", r)
		}
	})
}

// testSlowUploads holds 20 uploads open, each sending a few bytes every
// 100ms until a fast client's request was answered, and checks the
// upstream, which serves one request at a time, saw only the fast one
// meanwhile; then the uploads finish and arrive whole.
func testSlowUploads(t *testing.T, addr string, up *syncUpstream) {
	before := up.seen.Load()
	slowUploads(t, addr, "/up/", func() {
		if seen := up.seen.Load() - before; seen != 1 {
			t.Errorf("while the fast client was served the upstream saw %d requests, want 1", seen)
		}
	})
	if n := up.seen.Load() - before; n != slowClients+1 {
		t.Errorf("upstream saw %d requests, want %d", n, slowClients+1)
	}
}

const slowClients = 20

// slowUploads runs slowClients uploads to prefix+"slow" and, once hfork
// reads each one's body, a fast request to prefix+"fast", which must be
// answered while they all still send; served runs right after that
// answer. Then the uploads end, and each must be answered with its body's
// sum.
func slowUploads(t *testing.T, addr, prefix string, served func()) {
	fastDone := make(chan struct{})
	started := make(chan struct{}, slowClients)
	results := make(chan string, slowClients)
	var wg sync.WaitGroup
	for i := range slowClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- slowUpload(addr, prefix+"slow", i, started, fastDone)
		}()
	}
	// Each upload got its 100 Continue: hfork is reading its body.
	for range slowClients {
		select {
		case <-started:
		case r := <-results:
			close(fastDone)
			wg.Wait()
			t.Fatalf("an upload ended before it started: %s", r)
		}
	}
	resp, got := rawExchange(t, addr, "POST "+prefix+"fast HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n", []byte("fast"))
	over := len(results) // uploads already over (each waits for fastDone to finish)
	served()
	close(fastDone)
	wg.Wait()
	if resp.StatusCode != 200 || got != sum([]byte("fast")) {
		t.Errorf("fast client: status %d body %q", resp.StatusCode, got)
	}
	if over != 0 {
		t.Errorf("%d uploads were over before the fast client was answered, want 0", over)
	}
	for range slowClients {
		if r := <-results; r != "ok" {
			t.Error(r)
		}
	}
}

// slowUpload sends a body of a few bytes every 100ms after hfork's 100
// Continue (then it signals started) until fastDone, at most 15s, then the
// rest, and checks the answer: "ok" or what was wrong.
func slowUpload(addr, path string, i int, started chan<- struct{}, fastDone <-chan struct{}) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	piece := []byte(fmt.Sprintf("%02d:abcd|", i))
	var body []byte
	head := "POST " + path + " HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		return err.Error()
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		return fmt.Sprintf("upload %d: %q %v, want 100 Continue", i, line, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		return err.Error()
	}
	started <- struct{}{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; n < 150; n++ {
		if _, err := c.Write(chunk(piece)); err != nil {
			return err.Error()
		}
		body = append(body, piece...)
		select {
		case <-fastDone:
			n = 150
		case <-tick.C:
		}
	}
	if _, err := io.WriteString(c, "0\r\n\r\n"); err != nil {
		return err.Error()
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err.Error()
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != sum(body) {
		return fmt.Sprintf("upload %d: status %d body %q, want %q", i, resp.StatusCode, got, sum(body))
	}
	return "ok"
}

// testExpectContinue: the client waits for 100 Continue before it sends
// the body. hfork sends it; the upstream, which never sends one, is not
// asked for it.
func testExpectContinue(t *testing.T, addr string, up *syncUpstream) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	body := []byte("sent after 100 continue")
	fmt.Fprintf(c, "POST /up/expect HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("before the body: %v %v, want 100 Continue", resp, err)
	}
	c.Write(body)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != sum(body) {
		t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, got, sum(body))
	}
	if r := up.lastHead(); r == nil || r.Header.Get("Expect") != "" || r.ContentLength != int64(len(body)) {
		t.Errorf("upstream's request: %+v; want no Expect and Content-Length %d", r, len(body))
	}
}

// testSpill sends a body of 300 KiB (body_buffer_size is 4 KiB) in two
// halves. Between them the worker holds a deleted file in tmp; after the
// answer it holds none, tmp is empty and the body arrived whole.
func testSpill(t *testing.T, addr string, worker int, tmp string) {
	body := make([]byte, 300<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "PUT /up/file HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", len(body))
	c.Write(body[:len(body)/2])
	deadline := time.Now().Add(10 * time.Second)
	for len(filesIn(worker, tmp)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d holds no file in %s", worker, tmp)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if open := filesIn(worker, tmp); !strings.HasSuffix(open[0], " (deleted)") {
		t.Errorf("temporary file %q is not unlinked", open[0])
	}
	c.Write(body[len(body)/2:])
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != sum(body) {
		t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, got, sum(body))
	}
	// The answer is written before the handler lets go of the file.
	deadline = time.Now().Add(10 * time.Second)
	for len(filesIn(worker, tmp)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("worker still holds %v", filesIn(worker, tmp))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("%s holds %d entries, want none", tmp, len(ents))
	}
}

// filesIn lists the targets of pid's open descriptors inside dir.
func filesIn(pid int, dir string) []string {
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(fds)
	var out []string
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			out = append(out, target)
		}
	}
	return out
}

// sumApp answers a request with its body's length and SHA-256, as
// syncUpstream does.
const sumApp = `
import hashlib

def app(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n)
    out = ("%d %s" % (len(body), hashlib.sha256(body).hexdigest())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]
`

// TestRequestBufferingSyncApp is the case with a Python app of
// the sync class, one worker, behind the proxy, as gunicorn's sync
// workers sit behind nginx: 20 slow uploads do not keep a fast request
// from being served.
func TestRequestBufferingSyncApp(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sumapp.py"), []byte(sumApp), 0o644); err != nil {
		t.Fatal(err)
	}
	port := mustFreePort(t)
	m := startMasterIn(t, dir, "", fmt.Sprintf(`
pidfile = "hfork.pid"
log { format = "json" }
reload { watch = false }
listener "web" {
  bind    = "127.0.0.1:%d"
  workers = 1
  route "/" {
    proxy { upstream = "unix:py.sock" }
  }
}
listener "py" {
  bind         = "unix:py.sock"
  app          = "sumapp:app"
  class        = "sync"
  python       = %q
  dir          = %q
  workers      = 1
  boot_timeout = "90s"
}
`, port, debianPython, dir))
	m.waitLog(`"msg":"hfork ready"`, 1, 90*time.Second)
	slowUploads(t, fmt.Sprintf("127.0.0.1:%d", port), "/", func() {})
}
