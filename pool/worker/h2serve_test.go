package worker

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
func startH2Site(t *testing.T, l hclconfig.Listener, want string, edit ...func(*options)) (*testWorker, *logBuffer) {
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
		for _, e := range edit {
			e(o)
		}
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
	// Also the handshake's deadline: room for a slow one under -race.
	l.ReadHeaderTimeout, l.Keepalive = 2*time.Second, time.Minute
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

// TestH2IdleInHeartbeat: an HTTP/2 connection with no stream open counts
// as idle in the heartbeat, as net/http's server reports it.
func TestH2IdleInHeartbeat(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	c := h2Client()
	h2Do(t, c, "GET", "https://"+tw.addr+"/", nil)
	tw.sink.waitFor(t, "one open, idle connection", func(m map[string]string) bool {
		return m[wire.KeyConns] == "1,1,0"
	})
}

// TestH2QuietConnectionHoldsNoBuffers: a connection between requests
// holds no output buffer and no record-sized read buffer, after an upload
// in full records (which takes one) and a 300 KiB download alike.
func TestH2QuietConnectionHoldsNoBuffers(t *testing.T) {
	conns := make(chan *h2Conn, 1)
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork", func(o *options) {
		o.h2Started = func(c *h2Conn) { conns <- c }
	})
	// Full records from the start: crypto/tls sizes a new connection's
	// records to one packet otherwise.
	conn, err := tls.Dial("tcp", tw.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, DynamicRecordSizingDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitLimit))
	r := &rawH2{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.enc = hpack.NewEncoder(&r.hbuf)
	io.WriteString(conn, http2.ClientPreface)
	r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	r.fr.WriteWindowUpdate(0, 1<<20)
	c := <-conns
	state := func() (big bool, held int, busy bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			t.Fatal("the connection closed") // which lets go of everything
		}
		return c.big != nil, c.m.Held(), c.writing
	}

	r.hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		r.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.hbuf.Bytes(), EndHeaders: true})
	// A frame of one full record: 16 KiB with its 9-byte header.
	r.fr.WriteData(1, false, make([]byte, 16<<10-9))
	waitUntil(t, "a record-sized read buffer for the upload", func() bool { big, _, _ := state(); return big })
	r.fr.WriteData(1, true, make([]byte, 16<<10-9))
	if body := r.readStream(1); body != "hello, world!\n" {
		t.Fatalf("POST answered %q", body)
	}
	r.get(3, "/static/big.txt")
	if body := r.readStream(3); len(body) != 300<<10 {
		t.Fatalf("GET big.txt: %d bytes, want %d", len(body), 300<<10)
	}
	r.get(5, "/")
	r.readStream(5)
	waitUntil(t, "the connection quiet, holding no buffer", func() bool {
		big, held, busy := state()
		return !big && held == 0 && !busy
	})
}

// readStream reads frames until stream id ends and returns its body.
func (r *rawH2) readStream(id uint32) string {
	r.t.Helper()
	var body []byte
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("stream %d: %v", id, err)
		}
		if f.Header().StreamID != id {
			continue
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return string(body)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				return string(body)
			}
		case *http2.RSTStreamFrame:
			r.t.Fatalf("stream %d reset: %v", id, f.ErrCode)
		}
	}
}

// goAwayOf reads frames until GOAWAY and returns it; then the server
// closes the connection.
func (r *rawH2) goAwayOf() *http2.GoAwayFrame {
	r.t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			for {
				if _, err := r.fr.ReadFrame(); err != nil {
					if !errors.Is(err, io.EOF) {
						r.t.Fatalf("after GOAWAY: %v, want the connection closed", err)
					}
					return g
				}
			}
		}
	}
}

// TestH2SettingsTimeout: a client that never acknowledges the server's
// SETTINGS is served meanwhile, then gets GOAWAY SETTINGS_TIMEOUT (RFC
// 9113 section 6.5.3) well before keepalive; one that acknowledges them
// is untouched by it and meets keepalive's GOAWAY NO_ERROR instead.
func TestH2SettingsTimeout(t *testing.T) {
	l := h2Site(t, "")
	l.Keepalive = time.Minute
	tw, logs := startH2Site(t, l, "hfork", func(o *options) { o.h2SettingsTimeout = 200 * time.Millisecond })
	r := dialH2(t, tw.addr) // sends its SETTINGS, never the ACK
	r.get(1, "/")
	if body := r.readStream(1); body != "hello, world!\n" {
		t.Fatalf("before the timeout: %q", body)
	}
	if g := r.goAwayOf(); g.ErrCode != http2.ErrCodeSettingsTimeout || g.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v last %d, want SETTINGS_TIMEOUT last 1", g.ErrCode, g.LastStreamID)
	}
	if !strings.Contains(logs.String(), "http2 SETTINGS not acknowledged in time") {
		t.Errorf("no debug line for the timeout:\n%s", logs.String())
	}

	l.Keepalive = 600 * time.Millisecond
	tw, _ = startH2Site(t, l, "hfork", func(o *options) { o.h2SettingsTimeout = 100 * time.Millisecond })
	r = dialH2(t, tw.addr)
	r.fr.WriteSettingsAck()
	r.get(1, "/")
	if body := r.readStream(1); body != "hello, world!\n" {
		t.Fatalf("acknowledged: %q", body)
	}
	if g := r.goAwayOf(); g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
		t.Fatalf("acknowledged: GOAWAY %v last %d, want keepalive's NO_ERROR last 1", g.ErrCode, g.LastStreamID)
	}
}
