package worker

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/hclconfig/testcert"
	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker/app"
)

// h2Site is an async TLS listener with fast routes (respond, static,
// redirect) and a proxy route, which the fast path leaves to net/http.
func h2Site(t *testing.T, upstream string) hclconfig.Listener {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "4k.txt"), bytes.Repeat([]byte("abcd"), 1024), 0o644)
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	os.WriteFile(filepath.Join(root, "big.txt"), big, 0o644)
	os.WriteFile(filepath.Join(root, "a b.txt"), []byte("spaced\n"), 0o644)
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "c", testcert.Options{Names: []string{"localhost"}})
	l := testListener(hclconfig.ClassAsync)
	l.EventLoop = true
	l.TLS = hclconfig.TLS{Certificates: []hclconfig.Certificate{{Cert: cert, Key: key}}, MinVersion: hclconfig.TLS12}
	l.Routes = []hclconfig.Route{
		{Prefix: "/static/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: root}},
		{Prefix: "/old/", App: hclconfig.AppRedirect, Redirect: hclconfig.Redirect{To: "/new/", Status: 301}},
		{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{Status: 200, Body: "hello, world!\n",
			Headers: map[string]string{"Content-Type": "text/plain"}}},
	}
	if upstream != "" {
		l.Routes = append([]hclconfig.Route{{Prefix: "/up/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{upstream}}}}, l.Routes...)
	}
	return l
}

// startH2Site runs a worker for l as Main builds one and waits until it
// says which HTTP/2 server it runs.
func startH2Site(t *testing.T, l hclconfig.Listener, want string) (*testWorker, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	h, err := app.New(l, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	access, err := app.OpenAccessLog(l.AccessLog)
	if err != nil {
		t.Fatal(err)
	}
	var pairs []wire.CertPEM
	for _, c := range l.TLS.Certificates {
		pairs = append(pairs, pemPair(t, c.Cert, c.Key))
	}
	certs, err := certset.New(pairs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		access.Close()
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	tw := startWorker(t, l, app.ClientHandler(l, access.Wrap(handler(l, h))), nil, func(o *options) {
		o.Logger = logs.logger()
		o.Fast = h.(app.FastServer)
		o.AccessLog = access
		o.Certificates = certs
	})
	waitUntil(t, "the worker's serving line", func() bool { return strings.Contains(logs.String(), "worker serving") })
	if !strings.Contains(logs.String(), "http2="+want) {
		t.Fatalf("worker does not say http2=%s:\n%s", want, logs.String())
	}
	return tw, logs
}

func h2Client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"},
	}}
}

// echoUpstream answers with what it was sent, and the method.
func echoUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Write(b)
	}))
	t.Cleanup(up.Close)
	return up
}

type h2Answer struct {
	status int
	header http.Header
	body   string
}

func h2Do(t *testing.T, c *http.Client, method, url string, body []byte, hdr ...string) h2Answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s %s: %s", method, url, resp.Proto)
	}
	return h2Answer{resp.StatusCode, resp.Header, string(b)}
}

// TestH2AnswersAsNetHTTP asks hfork's HTTP/2 server and net/http's the
// same questions, on the fast path and off it, and compares.
func TestH2AnswersAsNetHTTP(t *testing.T) {
	up := echoUpstream(t)
	l := h2Site(t, up.URL)
	ours, _ := startH2Site(t, l, "hfork")
	l.EventLoop = false
	theirs, _ := startH2Site(t, l, "net/http")
	c := h2Client()
	post := bytes.Repeat([]byte("0123456789"), 50<<10) // 500 KiB: past every initial window
	for _, q := range []struct {
		method, path string
		body         []byte
		hdr          []string
	}{
		{"GET", "/", nil, nil},
		{"HEAD", "/", nil, nil},
		{"GET", "/static/4k.txt", nil, nil},
		{"GET", "/static/big.txt", nil, nil},
		{"HEAD", "/static/big.txt", nil, nil},
		{"GET", "/static/nope", nil, nil},
		{"GET", "/static/a%20b.txt", nil, nil},                            // escaped: net/http's
		{"GET", "/static/big.txt", nil, []string{"Range", "bytes=10-19"}}, // Range: net/http's
		{"GET", "/old/x?y=1", nil, nil},
		{"GET", "/static/../x", nil, nil},
		{"POST", "/up/echo", post, nil}, // a body: the handler's, under flow control
		{"PUT", "/up/small", []byte("tiny"), nil},
		{"GET", "/up/get", nil, nil},
	} {
		a := h2Do(t, c, q.method, "https://"+ours.addr+q.path, q.body, q.hdr...)
		b := h2Do(t, c, q.method, "https://"+theirs.addr+q.path, q.body, q.hdr...)
		name := q.method + " " + q.path
		if a.status != b.status || a.body != b.body {
			t.Errorf("%s: hfork %d %d bytes, net/http %d %d bytes", name, a.status, len(a.body), b.status, len(b.body))
		}
		for _, k := range []string{"Content-Type", "Content-Length", "Location", "Etag", "Last-Modified", "Content-Range", "X-Method"} {
			if a.header.Get(k) != b.header.Get(k) {
				t.Errorf("%s: %s hfork %q, net/http %q", name, k, a.header.Get(k), b.header.Get(k))
			}
		}
		if a.header.Get("Date") == "" {
			t.Errorf("%s: no Date", name)
		}
	}
}

// TestH2ManyStreams runs many streams at once on one connection: fast
// answers and handler answers interleave.
func TestH2ManyStreams(t *testing.T) {
	up := echoUpstream(t)
	tw, _ := startH2Site(t, h2Site(t, up.URL), "hfork")
	c := h2Client()
	errs := make(chan error, 200)
	for i := range 200 {
		go func() {
			path, want := "/static/big.txt", 300<<10
			if i%2 == 1 {
				path, want = "/up/x", 14
			}
			resp, err := c.Post("https://"+tw.addr+path, "text/plain", strings.NewReader("hello, world!\n"))
			if i%2 == 0 {
				resp, err = c.Get("https://" + tw.addr + path)
			}
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != 200 || len(b) != want) {
				err = fmt.Errorf("%s: %d, %d bytes", path, resp.StatusCode, len(b))
			}
			errs <- err
		}()
	}
	for range 200 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// rawH2 is a client of frames over TLS, to see what the server sends.
type rawH2 struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
}

func dialH2(t *testing.T, addr string, settings ...http2.Setting) *rawH2 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q", p)
	}
	conn.SetDeadline(time.Now().Add(waitLimit))
	r := &rawH2{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.enc = hpack.NewEncoder(&r.hbuf)
	io.WriteString(conn, http2.ClientPreface)
	r.fr.WriteSettings(settings...)
	return r
}

func (r *rawH2) get(stream uint32, path string) {
	r.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}} {
		r.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: r.hbuf.Bytes(), EndStream: true, EndHeaders: true})
}

// TestH2FlowControlOverTheWire reads a 300 KiB file through a 1000-byte
// stream window: the server sends no byte past the window and finishes
// as the client opens it.
func TestH2FlowControlOverTheWire(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	r := dialH2(t, tw.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	r.get(1, "/static/big.txt")
	window, got := 1000, 0
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			continue
		}
		n := len(d.Data())
		if n > window {
			t.Fatalf("a DATA frame of %d bytes in a window of %d", n, window)
		}
		window -= n
		got += n
		if d.StreamEnded() {
			break
		}
		if window == 0 {
			r.fr.WriteWindowUpdate(1, 1000)
			r.fr.WriteWindowUpdate(0, 1000)
			window = 1000
		}
	}
	if got != 300<<10 {
		t.Fatalf("%d bytes, want %d", got, 300<<10)
	}
}

// TestH2DrainSendsGoAway: a drain sends GOAWAY at once, lets the stream
// in flight finish, then the connection closes and the worker exits.
func TestH2DrainSendsGoAway(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "late but whole")
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	tw, _ := startH2Site(t, h2Site(t, up.URL), "hfork")
	r := dialH2(t, tw.addr)
	r.get(1, "/up/slow")
	<-started
	tw.sigs <- syscall.SIGTERM
	var goAway *http2.GoAwayFrame
	for goAway == nil {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			goAway = g
		}
	}
	if goAway.ErrCode != http2.ErrCodeNo || goAway.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v last %d, want NO_ERROR last 1", goAway.ErrCode, goAway.LastStreamID)
	}
	close(release)
	var body []byte
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("before the stream ended: %v", err)
		}
		if d, ok := f.(*http2.DataFrame); ok {
			body = append(body, d.Data()...)
			if d.StreamEnded() {
				break
			}
		}
	}
	if string(body) != "late but whole" {
		t.Fatalf("body %q", body)
	}
	if _, err := r.fr.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last stream: %v, want the connection closed", err)
	}
	if err := tw.wait(t); err != nil {
		t.Fatal(err)
	}
}

// TestH2RapidReset: a client that opens and resets streams without end
// gets GOAWAY ENHANCE_YOUR_CALM.
func TestH2RapidReset(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	r := dialH2(t, tw.addr)
	go func() {
		for id := uint32(1); id < 4000; id += 2 {
			r.get(id, "/static/big.txt")
			if r.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v", g.ErrCode)
			}
			return
		}
	}
}

// TestH2AccessLogAndMetrics: fast answers are logged like HTTP/1.1's.
func TestH2AccessLog(t *testing.T) {
	l := h2Site(t, "")
	l.AccessLog = hclconfig.AccessLog{File: filepath.Join(t.TempDir(), "access.log"), Format: "combined"}
	tw, _ := startH2Site(t, l, "hfork")
	c := h2Client()
	req, _ := http.NewRequest("GET", "https://"+tw.addr+"/hi?x=1", nil)
	req.Header.Set("User-Agent", "h2-test")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h2Do(t, c, "GET", "https://"+tw.addr+"/static/nope", nil)
	tw.sigs <- syscall.SIGTERM
	tw.wait(t)
	var data []byte
	waitUntil(t, "two access log lines", func() bool {
		data, _ = os.ReadFile(l.AccessLog.File)
		return bytes.Count(data, []byte("\n")) >= 2
	})
	for _, want := range []string{`"GET /hi?x=1 HTTP/2.0" 200 14 "-" "h2-test"`, `"GET /static/nope HTTP/2.0" 404`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("access log lacks %q:\n%s", want, data)
		}
	}
}

// TestH2Clients runs curl and h2load, where installed, against the
// worker: bounded counts on loopback.
func TestH2Clients(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	url := "https://" + tw.addr
	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("no curl")
		}
		out, err := exec.Command("curl", "-sk", "--http2", "-w", " %{http_version} %{http_code}", url+"/", url+"/static/4k.txt").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		if s := string(out); !strings.HasPrefix(s, "hello, world!\n 2 200") || !strings.HasSuffix(s, strings.Repeat("abcd", 1024)+" 2 200") {
			t.Fatalf("curl said %q", s)
		}
	})
	t.Run("h2load", func(t *testing.T) {
		if _, err := exec.LookPath("h2load"); err != nil {
			t.Skip("no h2load")
		}
		out, err := exec.Command("h2load", "-n", "2000", "-c", "4", "-m", "10", url+"/static/4k.txt").CombinedOutput()
		if err != nil {
			t.Fatalf("h2load: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "2000 succeeded, 0 failed, 0 errored") || !strings.Contains(string(out), "2000 2xx") {
			t.Fatalf("h2load:\n%s", out)
		}
	})
}

// TestH2LargeWindowNoUpdates: with windows larger than the file, the
// whole file comes without a WINDOW_UPDATE, though the server puts only
// a chunk of it in the output at a time.
func TestH2LargeWindowNoUpdates(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	r := dialH2(t, tw.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	r.fr.WriteWindowUpdate(0, 1<<31-1-65535)
	r.get(1, "/static/big.txt")
	got := 0
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
			if d.StreamEnded() {
				break
			}
		}
	}
	if got != 300<<10 {
		t.Fatalf("%d bytes, want %d", got, 300<<10)
	}
}

// TestH2IdleGoAway: an idle connection gets GOAWAY after keepalive, then
// closes.
func TestH2IdleGoAway(t *testing.T) {
	l := h2Site(t, "")
	l.Keepalive = 300 * time.Millisecond
	tw, _ := startH2Site(t, l, "hfork")
	r := dialH2(t, tw.addr)
	r.get(1, "/")
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
				t.Fatalf("GOAWAY %v last %d", g.ErrCode, g.LastStreamID)
			}
			break
		}
	}
	if _, err := r.fr.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after GOAWAY: %v, want the connection closed", err)
	}
}

// TestH2NetHTTPFallback: the thread class keeps net/http's HTTP/2.
func TestH2NetHTTPFallback(t *testing.T) {
	up := echoUpstream(t)
	l := h2Site(t, up.URL)
	l.Class, l.EventLoop = hclconfig.ClassThread, false
	tw, _ := startH2Site(t, l, "net/http")
	if a := h2Do(t, h2Client(), "POST", "https://"+tw.addr+"/up/x", []byte("via net/http")); a.body != "via net/http" {
		t.Fatalf("answer %+v", a)
	}
}

// TestH2HeadTimeout: a head left open (HEADERS without END_HEADERS) is
// cut at read_header_timeout, though keepalive is longer.
func TestH2HeadTimeout(t *testing.T) {
	l := h2Site(t, "")
	l.ReadHeaderTimeout, l.Keepalive = 200*time.Millisecond, time.Minute
	tw, _ := startH2Site(t, l, "hfork")
	r := dialH2(t, tw.addr)
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82}}) // :method GET, no END_HEADERS
	for {
		if _, err := r.fr.ReadFrame(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("want the server to close, got %v", err)
			}
			return
		}
	}
}

// startH2Handler runs a worker whose fast path is h2Site's routes and
// whose handler (for what the fast path leaves, like a POST) is h.
func startH2Handler(t *testing.T, h http.Handler) *testWorker {
	t.Helper()
	l := h2Site(t, "")
	site, err := app.New(l, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []wire.CertPEM{pemPair(t, l.TLS.Certificates[0].Cert, l.TLS.Certificates[0].Key)}
	certs, err := certset.New(pairs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return startWorker(t, l, h, nil, func(o *options) {
		o.Fast = site.(app.FastServer)
		o.Certificates = certs
	})
}

// TestH2HandlerFlushAndPanic: a handler's Flush sends what it wrote at
// once; a handler that panics resets its stream, and the connection
// serves on.
func TestH2HandlerFlushAndPanic(t *testing.T) {
	more := make(chan struct{})
	tw := startH2Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			<-more
			io.WriteString(w, "second")
		case "/panic":
			panic("handler broke")
		default:
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, r.Proto+" "+r.Host)
		}
	}))
	c := h2Client()
	resp, err := c.Post("https://"+tw.addr+"/stream", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first " {
		t.Fatalf("before the handler went on: %q, %v", buf, err)
	}
	close(more)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(rest) != "second" {
		t.Fatalf("rest %q", rest)
	}
	if resp, err := c.Post("https://"+tw.addr+"/panic", "text/plain", nil); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("a panicking handler's stream ended cleanly")
		}
	}
	if a := h2Do(t, c, "POST", "https://"+tw.addr+"/other", []byte("x")); a.status != http.StatusTeapot || a.body != "HTTP/2.0 "+tw.addr {
		t.Fatalf("after the panic: %+v", a)
	}
}
