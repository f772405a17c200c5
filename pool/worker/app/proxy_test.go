package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

func proxyRoute(prefix string, upstreams ...string) hclconfig.Route {
	// As hclconfig fills it in: request buffering on.
	return hclconfig.Route{Prefix: prefix, App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: upstreams, RequestBuffering: true}}
}

func TestProxyRoundRobin(t *testing.T) {
	var ups []string
	for _, name := range []string{"a", "b"} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name+" "+r.URL.RequestURI())
		}))
		defer up.Close()
		ups = append(ups, up.URL)
	}
	front := httptest.NewServer(mustNew(t, proxyRoute("/api/", ups...)))
	defer front.Close()

	var got []string
	for range 4 {
		resp, err := http.Get(front.URL + "/api/x?q=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, string(b))
	}
	want := []string{"a /api/x?q=1", "b /api/x?q=1", "a /api/x?q=1", "b /api/x?q=1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answers %q, want %q", got, want)
	}
}

func TestProxyForwardedHeaders(t *testing.T) {
	seen := make(chan *http.Request, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	front := httptest.NewServer(mustNew(t, proxyRoute("/", up.URL)))
	defer front.Close()

	req, _ := http.NewRequest("GET", front.URL+"/p", nil)
	req.Host = "example.test"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("X-Forwarded-Proto", "https") // a client cannot claim TLS
	req.Header.Set("X-Forwarded-Host", "spoofed.test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-seen
	for k, want := range map[string]string{
		"X-Forwarded-For":   "198.51.100.7, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "example.test",
	} {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", k, got, want)
		}
	}
	if r.Host != upURL.Host {
		t.Errorf("upstream Host = %q, want the upstream's %q", r.Host, upURL.Host)
	}
}

// TestProxyPassesAcceptEncoding: the upstream sees the client's
// Accept-Encoding, and none when the client sent none.
func TestProxyPassesAcceptEncoding(t *testing.T) {
	seen := make(chan string, 2)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Accept-Encoding")
	}))
	defer up.Close()
	front := httptest.NewServer(mustNew(t, proxyRoute("/", up.URL)))
	defer front.Close()
	for _, ae := range []string{"", "br"} {
		// A raw request: net/http's client would add gzip itself.
		c, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		if ae != "" {
			req += "Accept-Encoding: " + ae + "\r\n"
		}
		io.WriteString(c, req+"\r\n")
		io.Copy(io.Discard, c)
		c.Close()
		if got := <-seen; got != ae {
			t.Errorf("client sent Accept-Encoding %q, upstream saw %q", ae, got)
		}
	}
}

func TestProxyDeadUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	var logs bytes.Buffer
	h, err := New(hclconfig.Listener{Routes: []hclconfig.Route{proxyRoute("/", dead)}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	defer front.Close()

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(front.URL + "/x")
	if err != nil {
		t.Fatalf("want a 502, got %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	line := logs.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, "upstream="+ln.Addr().String()) || !strings.Contains(line, "err=") {
		t.Errorf("want one log line with upstream and err, got %q", line)
	}
}

// echoUpstream answers one Upgrade request with 101 and then echoes bytes,
// like a WebSocket server would after its handshake.
func echoUpstream(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || !strings.EqualFold(req.Header.Get("Upgrade"), "echo") {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br)
	}()
	return "http://" + ln.Addr().String()
}

func TestProxyUpgrade(t *testing.T) {
	up := echoUpstream(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	al, err := OpenAccessLog(hclconfig.AccessLog{File: logPath})
	if err != nil {
		t.Fatal(err)
	}
	var upgraded atomic.Int32
	handled := make(chan struct{})
	h := al.Wrap(mustNew(t, proxyRoute("/ws/", up)))
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handled)
		ctx := WithUpgradeHook(r.Context(), func() { upgraded.Add(1) })
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer front.Close()

	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws/chat HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"ping", "pong and more"} {
		io.WriteString(c, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo: %q, %v; want %q", buf, err, msg)
		}
	}
	if n := upgraded.Load(); n != 1 {
		t.Errorf("upgrade hook fired %d times, want 1", n)
	}

	// The tunnel ends with the client; then the handler returns and logs.
	c.Close()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("proxy handler still running after the client left")
	}
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, logPath); !strings.Contains(got, `"GET /ws/chat HTTP/1.1" 101 `) {
		t.Errorf("access log %q, want the request with status 101", got)
	}
}

func TestProxyClientGone(t *testing.T) {
	p, err := newProxy(hclconfig.Proxy{Upstream: []string{"http://127.0.0.1:1"}}, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if rec.Code != 499 {
		t.Errorf("status %d, want 499 for a client that left", rec.Code)
	}
}

func BenchmarkProxyRewrite(b *testing.B) {
	p, err := newProxy(hclconfig.Proxy{Upstream: []string{"http://10.0.0.1:9000", "http://10.0.0.2:9000"}}, 0, quiet)
	if err != nil {
		b.Fatal(err)
	}
	in := httptest.NewRequest("GET", "/api/users?page=2", nil)
	in.RemoteAddr = "192.0.2.10:51234"
	in.Host = "example.test"
	in.Header.Set("X-Forwarded-For", "198.51.100.7")
	in.Header.Set("User-Agent", "bench")
	outURL := *in.URL
	out := *in
	out.URL = &outURL
	out.Header = http.Header{}
	pr := &httputil.ProxyRequest{In: in, Out: &out}
	b.ReportAllocs()
	for b.Loop() {
		clear(out.Header)
		*out.URL = *in.URL
		out.Host = in.Host
		p.rewrite(pr)
	}
}

// TestProxyUnixRequestHeaders: net/http's proxy reaches a unix-socket
// upstream with Host "localhost", and applies request_headers after its
// own: remove, set, add.
func TestProxyUnixRequestHeaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan *http.Request, 1)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		io.WriteString(w, "unix")
	})}
	go up.Serve(ln)
	defer up.Close()
	rc := proxyRoute("/", "unix:"+path)
	rc.Proxy.RequestHeaders = hclconfig.RequestHeaders{
		Remove: []string{"Cookie", "X-Forwarded-Host"},
		Set:    map[string]string{"X-Env": "prod"},
		Add:    map[string]string{"Via": "hfork"},
	}
	front := httptest.NewServer(mustNew(t, rc))
	defer front.Close()
	req, _ := http.NewRequest("POST", front.URL+"/p", strings.NewReader("body"))
	req.Header.Set("Cookie", "a=1")
	req.Header.Set("X-Env", "dev")
	req.Header.Set("Via", "1.1 lb")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := <-seen
	if string(b) != "unix" || r.Host != "localhost" || r.Header.Get("Cookie") != "" || r.Header.Get("X-Forwarded-Host") != "" ||
		r.Header.Get("X-Env") != "prod" || fmt.Sprint(r.Header["Via"]) != "[1.1 lb hfork]" || r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("answer %q; upstream saw Host %q, headers %v", b, r.Host, r.Header)
	}
}

// TestProxyRetries: a refused upstream costs an idempotent request
// nothing (a PUT's body is kept whole and sent again), but a POST is not
// sent twice.
func TestProxyRetries(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	defer live.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	rc := proxyRoute("/", dead, live.URL)
	rc.Proxy.Policy, rc.Proxy.Retries = hclconfig.PolicyFirst, 1
	front := httptest.NewServer(mustNew(t, rc))
	defer front.Close()
	for _, tc := range []struct {
		method string
		code   int
		body   string
	}{{"GET", 200, "GET "}, {"PUT", 200, "PUT data"}, {"POST", 502, ""}} {
		var body io.Reader
		if tc.method != "GET" {
			body = strings.NewReader("data")
		}
		req, _ := http.NewRequest(tc.method, front.URL+"/", body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || (tc.code == 200 && string(b) != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.method, resp.StatusCode, b, tc.code, tc.body)
		}
	}
}
