package worker

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// loopSite is a listener with a route of every kind: what the event loop
// answers itself (respond, static, redirect, the slash redirect) and what
// it hands to net/http (proxy).
func loopSite(t testing.TB) hclconfig.Listener {
	t.Helper()
	root := t.TempDir()
	write := func(name string, data []byte) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", []byte("file a\n"))
	write("page.html", []byte("<p>hi</p>\n"))
	write("noext", []byte("<html><body>sniffed</body></html>"))
	write("sub/index.html", []byte("<h1>index</h1>\n"))
	write("empty.txt", nil)
	write(".env", []byte("SECRET=1\n"))
	write("text.txt", bytes.Repeat([]byte("compress me, loop and net/http alike\n"), 300))
	write("pre.html", []byte("<p>identity</p>\n"))
	write("pre.html.gz", []byte("not really gzip, but served as it is\n"))
	write(".well-known/x.txt", []byte("well known\n"))
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i/4099)
	}
	write("big.bin", big)
	os.Mkdir(filepath.Join(root, "bare"), 0o755)
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "abs-link")); err != nil {
		t.Fatal(err)
	}

	up := httptest.NewServer(http.HandlerFunc(upstreamApp))
	t.Cleanup(up.Close)

	l := testListener(hclconfig.ClassAsync)
	l.EventLoop = true
	l.Keepalive = 30 * time.Second
	l.MaxHeaderBytes = 32 << 10
	l.MaxBodyBytes = 1 << 20
	l.ReadHeaderTimeout = 5 * time.Second
	l.Routes = []hclconfig.Route{
		{Prefix: "/static/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: root, Hidden: []string{".*"}},
			Headers: hclconfig.Headers{Add: map[string]string{"X-Level": "route"}, Remove: []string{"Accept-Ranges"}}},
		{Prefix: "/proxy/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{up.URL}},
			Headers: hclconfig.Headers{Set: map[string]string{"X-Public": "overridden"}, Add: map[string]string{"X-Level": "proxy"}}},
		{Prefix: "/dead/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{"http://127.0.0.1:1"}}},
		{Prefix: "/zproxy/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{up.URL}},
			Compress: hclconfig.Compress{Encodings: []string{"zstd", "gzip"}, Types: []string{"text/*"}, MinSize: 16, Level: 1}},
		{Prefix: "/old/", App: hclconfig.AppRedirect, Redirect: hclconfig.Redirect{To: "/new/", Status: 301}},
		{Prefix: "/go", App: hclconfig.AppRedirect, Redirect: hclconfig.Redirect{To: "https://example.com/x?a=1"}},
		{Prefix: "/empty", App: hclconfig.AppRespond, Respond: hclconfig.Respond{Status: 204}},
		{Prefix: "/bigrespond", App: hclconfig.AppRespond, Respond: hclconfig.Respond{Status: 200, Body: strings.Repeat("b", 100<<10)}},
		{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{
			Status: 200, Body: "hello\n", Headers: map[string]string{"X-Site": "loop", "Cache-Control": "no-store"},
		}, Headers: hclconfig.Headers{Set: map[string]string{"Cache-Control": "max-age=60"}}},
	}
	l.Headers = hclconfig.Headers{Set: map[string]string{"Strict-Transport-Security": "max-age=1"}, Add: map[string]string{"X-Level": "listener"}}
	page := filepath.Join(t.TempDir(), "404.html")
	if err := os.WriteFile(page, []byte("<p>no such page</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.ErrorPages = map[int]string{404: page}
	l.Hosts = []hclconfig.Host{{Label: "shop", Names: []string{"shop.test", "*.shop.test"}, Headers: hclconfig.Headers{Set: map[string]string{"X-Level": "host"}},
		Compress: hclconfig.Compress{Encodings: []string{"zstd", "gzip"}, Types: []string{"text/*"}, MinSize: 1024, Level: 1}, Routes: []hclconfig.Route{
			{Prefix: "/pre/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: root, Precompressed: true}},
			{Prefix: "/big", App: hclconfig.AppRespond, Respond: hclconfig.Respond{Status: 200, Body: strings.Repeat("big answer ", 1000)}},
			{Prefix: "/files/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: root, Index: []string{"none.html", "index.html"}, Fallback: "page.html"}, Headers: hclconfig.Headers{Remove: []string{"Strict-Transport-Security"}}},
			{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{Status: 200, Body: "shop\n"}},
		}}}
	return l
}

// upstreamApp is the proxy routes' upstream: it says what it was sent,
// and answers in the framings and with the headers a proxy must handle.
func upstreamApp(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := w.Header()
	path := strings.TrimPrefix(r.URL.Path, "/z") // "/zproxy/" is "/proxy/" under compress
	switch strings.TrimPrefix(strings.TrimPrefix(path, "/"), "proxy") {
	case "/chunked":
		w.Write([]byte("part one;"))
		w.(http.Flusher).Flush()
		w.Write([]byte("part two"))
		return
	case "/trailer":
		h.Set("Trailer", "X-Sum")
		w.Write([]byte("with a trailer"))
		w.(http.Flusher).Flush()
		h.Set("X-Sum", "42")
		return
	case "/hop":
		h.Set("Connection", "X-Private")
		h.Set("X-Private", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("X-Public", "yes")
		io.WriteString(w, "hop")
		return
	case "/nocontent":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/notmodified":
		h.Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
		return
	case "/big":
		h.Set("Content-Length", strconv.Itoa(1<<20))
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16))
		return
	case "/status":
		h.Set("Content-Type", "text/custom")
		w.WriteHeader(418)
		io.WriteString(w, "teapot")
		return
	}
	var hs []string
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "User-Agent", "Accept", "Connection", "Te", "X-Private", "Content-Length"} {
		hs = append(hs, fmt.Sprintf("%s=%q", k, r.Header.Values(k)))
	}
	var odd []string // names with an underscore, which a proxy drops
	for k, vs := range r.Header {
		if strings.Contains(k, "_") {
			odd = append(odd, fmt.Sprintf("%s=%q", k, vs))
		}
	}
	slices.Sort(odd)
	hs = append(hs, odd...)
	fmt.Fprintf(w, "upstream %s %s host=%s %q %s", r.Method, r.URL.RequestURI(), r.Host, body, strings.Join(hs, " "))
}

// siteLogs are the logs of the workers startSite started, by address.
var siteLogs sync.Map

// startSite runs a worker for l the way Main builds one: the routes behind
// Handler and the access log, with the fast path. It fails the test unless
// the worker serves from the event loop exactly when l.EventLoop says so.
func startSite(t testing.TB, l hclconfig.Listener, ln net.Listener, edit func(*options)) *testWorker {
	t.Helper()
	var logs logBuffer
	h, err := app.New(l, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	access, err := app.OpenAccessLog(l.AccessLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		access.Close()
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	tw := startWorker(t, l, access.Wrap(handler(l, h)), ln, func(o *options) {
		o.Logger = logs.logger()
		o.Fast = h.(app.FastServer)
		o.AccessLog = access
		o.Reopen = access.Reopen
		if edit != nil {
			edit(o)
		}
	})
	siteLogs.Store(tw.addr, &logs)
	want := fmt.Sprintf("event_loop=%v", l.EventLoop)
	waitUntil(t, "the worker's serving line", func() bool { return strings.Contains(logs.String(), "worker serving") })
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("worker does not say %s:\n%s", want, logs.String())
	}
	return tw
}

// answer is one response as a client sees it, with what may differ
// between two correct servers taken out: the Date, and header order.
type answer struct {
	Proto, Status string
	Header        []string
	Body          string
}

func (a answer) String() string {
	return fmt.Sprintf("%s %s\n%s\n\n%q", a.Proto, a.Status, strings.Join(a.Header, "\n"), a.Body)
}

// replay writes in on a new connection at once (the requests pipelined),
// then reads every response until the server closes. methods gives each
// request's method, for the responses to HEAD.
func replay(t *testing.T, addr, in string, methods []string) []answer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return replayOn(t, c, in, methods)
}

// replayOn is replay on the connection c, which it closes.
func replayOn(t *testing.T, c net.Conn, in string, methods []string) []answer {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []answer
	for i := 0; ; i++ {
		m := "GET"
		if i < len(methods) {
			m = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			// ReadResponse says ErrUnexpectedEOF for a stream that ends
			// where a response would begin.
			if err != io.EOF && err != io.ErrUnexpectedEOF && !isReset(err) {
				out = append(out, answer{Status: "read error: " + err.Error()})
			}
			return out
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			out = append(out, answer{Status: "body error: " + err.Error()})
			return out
		}
		a := answer{Proto: resp.Proto, Status: resp.Status, Body: string(body)}
		for k, vs := range resp.Header {
			if k == "Date" {
				continue
			}
			for _, v := range vs {
				a.Header = append(a.Header, k+": "+v)
			}
		}
		slices.Sort(a.Header)
		out = append(out, a)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// closer ends every replay: the server answers it and closes.
const closer = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

func TestLoopAnswersAsNetHTTP(t *testing.T) {
	// Two workers with the same routes, one serving from the event loop,
	// one from net/http alone: every exchange must look the same to the
	// client, request by request, pipelined or not, valid or not.
	l := loopSite(t)
	fast := startSite(t, l, nil, nil)
	l.EventLoop = false
	std := startSite(t, l, nil, nil)

	big := strings.Repeat("x", 12<<10)
	cases := []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /any/path;p=1?q=%20&r=/x HTTP/1.1\r\nHost: x:80\r\nUser-Agent: t\r\nReferer: http://r/\r\n\r\n",
		"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /static/a.txt HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
		"HEAD /static/a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nhOsT: x\r\nconnection: Keep-Alive, Foo\r\ncontent-length: 0\r\n\r\n",
		// hosts
		"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET /files/a.txt HTTP/1.1\r\nHost: A.Shop.Test:8080\r\n\r\n",
		"GET /static/a.txt HTTP/1.1\r\nHost: shop.test\r\n\r\nGET /static/a.txt HTTP/1.1\r\nHost: shop.test.\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: notshop.test\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		// compression
		"GET /files/text.txt HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\n\r\nGET /files/text.txt HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: zstd, gzip\r\n\r\n",
		"GET /files/text.txt HTTP/1.1\r\nHost: shop.test\r\n\r\nHEAD /files/text.txt HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip;q=0.5, zstd;q=0.1\r\n\r\n",
		"GET /files/text.txt HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9\r\n\r\n",
		"GET /files/text.txt HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: identity;q=0\r\n\r\nGET /files/a.txt HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\n\r\n",
		"GET /big HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\n\r\nGET /big HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: br\r\n\r\nGET / HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\n\r\n",
		"GET /pre/pre.html HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\n\r\nGET /pre/pre.html HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET /files/text.txt HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\nAccept-Encoding: zstd\r\n\r\n",
		// a proxy route that compresses: net/http for a client that takes a
		// coding, the loop (with Vary) for one that does not
		"GET /zproxy/a HTTP/1.1\r\nHost: x\r\n\r\nGET /zproxy/a HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br\r\n\r\n",
		"GET /zproxy/status HTTP/1.1\r\nHost: x\r\n\r\nGET /zproxy/nocontent HTTP/1.1\r\nHost: x\r\n\r\nHEAD /zproxy/big HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /zproxy/chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /zproxy/hop HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /zproxy/a HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
		// dotfiles, the fallback, the index list, error pages
		"GET /static/.env HTTP/1.1\r\nHost: x\r\n\r\nGET /static/.well-known/x.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /files/no/such/route HTTP/1.1\r\nHost: shop.test\r\n\r\nGET /files/sub/ HTTP/1.1\r\nHost: shop.test\r\n\r\nGET /files/bare/ HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"HEAD /static/missing HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		// static
		"GET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/page.html HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/noext HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/empty.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/sub/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/sub HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/sub?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/bare/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/missing HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/a.txt/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/abs-link HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/../loop_test.go HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/%2e%2e/loop_test.go HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/a%2etxt HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /static/a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\n\r\n",
		"GET /static/a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n",
		"GET /static/a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n",
		"POST /static/a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
		// proxied
		"GET /proxy/a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\r\nAccept: */*\r\n\r\n",
		"GET /proxy/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\n\r\n",
		"HEAD /proxy/a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: 300\r\nProxy-Connection: x\r\n\r\n",
		"GET /proxy/a HTTP/1.1\r\nHost: x\r\nConnection: X-Private\r\nX-Private: p\r\n\r\n",
		"GET /proxy/a HTTP/1.1\r\nHost: x\r\nTe: trailers\r\n\r\n",
		"GET /proxy/a HTTP/1.0\r\n\r\n",
		"GET /proxy/chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /proxy/a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/trailer HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/hop HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/nocontent HTTP/1.1\r\nHost: x\r\n\r\nGET /proxy/notmodified HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/big HTTP/1.1\r\nHost: x\r\n\r\nHEAD /proxy/big HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/status HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nGET /proxy/b HTTP/1.1\r\nHost: x\r\n\r\nGET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /proxy/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dead/a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /dead/a HTTP/1.1\r\nHost: x\r\n\r\n",
		// redirects
		"GET /old/a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /old/a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /old//evil.com HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /go/on?b=2 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /old HTTP/1.1\r\nHost: x\r\n\r\n",
		// handed over to net/http mid-pipeline
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /proxy/p?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /proxy/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /proxy/e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n",
		"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://x/abs HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
		// malformed: net/http answers them, whichever path read them
		"GARBAGE\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n Folded: line\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x y\r\n\r\n",
		"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
		"get / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\n\r\n\r\n",
		"GET / HTTP/1.1Z\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: y\n\r\n",
		"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	for _, in := range cases {
		in += closer
		var methods []string
		for _, line := range strings.Split(in, "\r\n") {
			if m, _, ok := strings.Cut(line, " "); ok && strings.HasPrefix(line, m+" /") && (m == "GET" || m == "HEAD" || m == "POST") {
				methods = append(methods, m)
			}
		}
		got := replay(t, fast.addr, in, methods)
		want := replay(t, std.addr, in, methods)
		if len(got) != len(want) {
			t.Errorf("%.120q: %d answers from the loop, %d from net/http:\nloop:\n%v\nnet/http:\n%v", in, len(got), len(want), got, want)
			continue
		}
		for i := range got {
			if got[i].String() != want[i].String() {
				t.Errorf("%.120q, answer %d:\nloop:\n%v\nnet/http:\n%v", in, i, got[i], want[i])
			}
		}
	}
}

func TestLoopLongHeads(t *testing.T) {
	// Heads past the loop's own limit go to net/http, which serves them up
	// to max_header_bytes and refuses longer ones.
	l := loopSite(t)
	tw := startSite(t, l, nil, nil)
	for _, tc := range []struct {
		size int
		want string
	}{
		{evloop.MaxHead - 100, "HTTP/1.1 200 OK"},
		{evloop.MaxHead + 100, "HTTP/1.1 200 OK"},
		{l.MaxHeaderBytes - 200, "HTTP/1.1 200 OK"},
		{l.MaxHeaderBytes + 8192, "HTTP/1.1 431 Request Header Fields Too Large"},
	} {
		req := "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", tc.size) + "\r\n\r\n"
		if got := rawExchange(t, tw.addr, req); got != tc.want {
			t.Errorf("a %d-byte header: %q, want %q", tc.size, got, tc.want)
		}
	}
}

// dialSlowReader connects with a small receive buffer, set before the
// handshake so the window is small from the start: a big answer then
// stays in flight while the client does not read.
func dialSlowReader(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialSite opens a raw connection to a test worker.
func dialSite(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return c, bufio.NewReader(c)
}

func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return resp, string(body)
}

func TestLoopServesItself(t *testing.T) {
	// What the loop answers never reaches net/http; what it does not
	// answer is handed over, one debug line per connection.
	tw := startSite(t, loopSite(t), nil, nil)
	v, _ := siteLogs.Load(tw.addr)
	logs := v.(*logBuffer)
	handoffs := func() int { return strings.Count(logs.String(), "event loop hands a connection to net/http") }
	own := "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /old/a HTTP/1.1\r\nHost: x\r\n\r\nGET /proxy/a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /proxy/chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /dead/a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /zproxy/a HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br;q=1, gzip;q=0\r\n\r\n" +
		"GET /static/sub HTTP/1.1\r\nHost: x\r\n\r\nGET /nope/../x HTTP/1.1\r\nHost: x\r\n\r\n" + closer
	if got := replay(t, tw.addr, own, nil); len(got) != 10 {
		t.Fatalf("%d answers, want 10: %v", len(got), got)
	}
	if n := handoffs(); n != 0 {
		t.Fatalf("%d connections handed to net/http:\n%s", n, logs.String())
	}
	for i, in := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
		"GET /static/a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n",
		"GET /proxy/a HTTP/1.0\r\n\r\n",
		"GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n",
		"BAD\r\n\r\n",
	} {
		replay(t, tw.addr, in+closer, []string{"POST"})
		waitUntil(t, "a handoff line", func() bool { return handoffs() == i+1 })
	}
}

func TestLoopHeadInPieces(t *testing.T) {
	tw := startSite(t, loopSite(t), nil, nil)
	c, br := dialSite(t, tw.addr)
	// One byte per write, then a request whose head and the next one's
	// start share a write.
	req := "GET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
	for i := range len(req) {
		if _, err := c.Write([]byte{req[i]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, body := readAnswer(t, br, "GET"); body != "file a\n" {
		t.Fatalf("body %q", body)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /static/a")
	if _, body := readAnswer(t, br, "GET"); body != "hello\n" {
		t.Fatalf("body %q", body)
	}
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, ".txt HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := readAnswer(t, br, "GET"); body != "file a\n" {
		t.Fatalf("body %q", body)
	}
}

func TestLoopPipelinesBehindFiles(t *testing.T) {
	// Answers leave in request order, also when a file (sent by
	// sendfile, after its head) comes between two in-memory answers, and
	// when the client reads slowly enough for the socket to fill.
	l := loopSite(t)
	tw := startSite(t, l, nil, nil)
	want, err := os.ReadFile(filepath.Join(l.Routes[0].Static.Root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	c, br := dialSite(t, tw.addr)
	var in strings.Builder
	const rounds = 4
	for range rounds {
		in.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\nHEAD /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	go io.WriteString(c, in.String())
	time.Sleep(200 * time.Millisecond) // let the socket buffers fill
	for i := range rounds {
		if _, body := readAnswer(t, br, "GET"); body != "hello\n" {
			t.Fatalf("round %d: respond body %q", i, body)
		}
		resp, body := readAnswer(t, br, "GET")
		if sha256.Sum256([]byte(body)) != sha256.Sum256(want) || resp.ContentLength != int64(len(want)) {
			t.Fatalf("round %d: file of %d bytes (Content-Length %d), want %d and the same bytes", i, len(body), resp.ContentLength, len(want))
		}
		if resp, body := readAnswer(t, br, "HEAD"); body != "" || resp.ContentLength != int64(len(want)) {
			t.Fatalf("round %d: HEAD answer %d bytes, Content-Length %d", i, len(body), resp.ContentLength)
		}
	}
}

func TestLoopTimeouts(t *testing.T) {
	// Wide enough that a loaded machine's scheduling delays (the third
	// subtest pauses 100 ms inside each head) stay well inside them.
	l := loopSite(t)
	l.ReadHeaderTimeout = time.Second
	l.Keepalive = 1500 * time.Millisecond
	tw := startSite(t, l, nil, nil)

	t.Run("read_header_timeout", func(t *testing.T) {
		// A head trickled a byte at a time does not reset the clock.
		// The clock starts before the dial: the loop's starts at accept,
		// which may come before dialSite returns.
		start := time.Now()
		c, br := dialSite(t, tw.addr)
		go func() {
			for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			for {
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("an answer to a head that never ended")
		}
		if took := time.Since(start); took < l.ReadHeaderTimeout {
			t.Errorf("closed after %v, before read_header_timeout %v", took, l.ReadHeaderTimeout)
		}
	})
	t.Run("keepalive", func(t *testing.T) {
		c, br := dialSite(t, tw.addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, br, "GET")
		idle := time.Now()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection: read = %v, want EOF", err)
		}
		if took := time.Since(idle); took < l.Keepalive {
			t.Errorf("closed after %v idle, before keepalive %v", took, l.Keepalive)
		}
	})
	t.Run("each request gets its own header time", func(t *testing.T) {
		// Requests that keep coming keep the connection: the deadline is
		// per head, not per connection.
		c, br := dialSite(t, tw.addr)
		for i := range 8 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, "\r\n")
			if _, body := readAnswer(t, br, "GET"); body != "hello\n" {
				t.Fatalf("request %d: %q", i, body)
			}
		}
	})
}

func TestLoopWriteTimeout(t *testing.T) {
	// A client that stops reading is cut off after write_timeout, whether
	// its answers come from a file or through the proxy.
	for _, tc := range []struct {
		path  string
		n     int
		total int64
	}{
		{"/static/big.bin", 4, 4 * (3 << 20)},
		{"/proxy/big", 20, 20 << 20},
	} {
		t.Run(tc.path, func(t *testing.T) {
			l := loopSite(t)
			l.WriteTimeout = 300 * time.Millisecond
			tw := startSite(t, l, nil, nil)
			c := dialSlowReader(t, tw.addr)
			io.WriteString(c, strings.Repeat("GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n", tc.n))
			// The client reads only once the loop has cut it off.
			logs, _ := siteLogs.Load(tw.addr)
			waitUntil(t, "the cut at write_timeout", func() bool {
				return strings.Contains(logs.(*logBuffer).String(), `"event loop closes a connection at its deadline" state=writing`)
			})
			c.SetReadDeadline(time.Now().Add(waitLimit))
			if n, _ := io.Copy(io.Discard, c); n >= tc.total {
				t.Fatalf("all %d bytes arrived; the connection should have been cut", n)
			}
		})
	}
}

func TestLoopDrain(t *testing.T) {
	l := loopSite(t)
	const grace = 300 * time.Millisecond
	tw := startSite(t, l, nil, func(o *options) { o.IdleGrace = grace })

	idle, idleBr := dialSite(t, tw.addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, idleBr, "GET")
	busy, busyBr := dialSite(t, tw.addr)
	io.WriteString(busy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, busyBr, "GET")
	// A big file in flight when the drain begins: it finishes.
	slow := dialSlowReader(t, tw.addr)
	io.WriteString(slow, "GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)

	start := time.Now()
	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))

	// A request on an idle connection during the drain is answered, with
	// Connection: close.
	io.WriteString(busy, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readAnswer(t, busyBr, "GET")
	if body != "hello\n" || !resp.Close {
		t.Fatalf("request during the drain: %q, close=%v", body, resp.Close)
	}
	// New connections go elsewhere: this worker no longer accepts. (The
	// test's listener has no sibling, so a dial is queued, unanswered.)

	slow.SetReadDeadline(time.Now().Add(waitLimit))
	sr := bufio.NewReader(slow)
	resp, err := http.ReadResponse(sr, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 3<<20 {
		t.Fatalf("file in flight during the drain: %d bytes, %v", n, err)
	}

	idle.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := idleBr.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read = %v, want EOF", err)
	}
	if took := time.Since(start); took < grace {
		t.Errorf("idle connection closed %v into the drain, before the %v grace", took, grace)
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestLoopDrainWaitsForHandedOver(t *testing.T) {
	// A connection the loop handed to net/http is the drain's too.
	l := loopSite(t)
	tw := startSite(t, l, nil, func(o *options) { o.IdleGrace = 200 * time.Millisecond })
	c, br := dialSite(t, tw.addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	readAnswer(t, br, "POST")
	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readAnswer(t, br, "GET")
	if body != "hello\n" || !resp.Close {
		t.Fatalf("handed-over connection during the drain: %q, close=%v", body, resp.Close)
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestLoopFastStop(t *testing.T) {
	tw := startSite(t, loopSite(t), nil, nil)
	c, br := dialSite(t, tw.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, br, "GET")
	tw.sigs <- syscall.SIGQUIT
	if _, err := br.ReadByte(); err != io.EOF && !isReset(err) {
		t.Fatalf("after a fast stop: read = %v, want the connection closed", err)
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestLoopMaxRequests(t *testing.T) {
	l := loopSite(t)
	l.MaxRequests = 25
	tw := startSite(t, l, nil, nil)
	c, br := dialSite(t, tw.addr)
	for range 25 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, br, "GET")
	}
	tw.sink.waitFor(t, wire.KeyRecycle+"=1", has(wire.KeyRecycle, "1"))
}

func TestLoopConnectionCap(t *testing.T) {
	// At worker_connections the loop accepts no more until one closes;
	// a client waiting in the queue then gets the oldest idle one's
	// place.
	l := loopSite(t)
	l.WorkerConnections = 2
	tw := startSite(t, l, nil, nil)
	var held []net.Conn
	for range 2 {
		c, br := dialSite(t, tw.addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, br, "GET")
		held = append(held, c)
	}
	c, br := dialSite(t, tw.addr)
	io.WriteString(c, "GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := readAnswer(t, br, "GET"); body != "hello\n" {
		t.Fatalf("third connection: %q", body)
	}
	closed := 0
	for _, h := range held {
		h.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := h.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("%d idle connections closed to make room, want 1", closed)
	}
}

func TestLoopAccessLog(t *testing.T) {
	l := loopSite(t)
	dir := t.TempDir()
	l.AccessLog = hclconfig.AccessLog{File: filepath.Join(dir, "access.log"), Format: "combined"}
	tw := startSite(t, l, nil, nil)
	replay(t, tw.addr, "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: ua \"q\"\r\nReferer: http://r/\r\n\r\n"+
		"HEAD /static/a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"+
		"GET /static/nope HTTP/1.1\r\nHost: x\r\n\r\n"+closer, []string{"GET", "HEAD"})
	tw.sigs <- syscall.SIGTERM
	tw.wait(t)
	// The worker's cleanup closes (flushes) the log; so does this.
	var data []byte
	waitUntil(t, "four access log lines", func() bool {
		data, _ = os.ReadFile(l.AccessLog.File)
		return bytes.Count(data, []byte("\n")) >= 4
	})
	for _, want := range []string{
		`127.0.0.1 - - [`,
		`] "GET /a?b=1 HTTP/1.1" 200 6 "http://r/" "ua \x22q\x22"`,
		`] "HEAD /static/a.txt HTTP/1.0" 200 0 "-" "-"`,
		`] "GET /static/nope HTTP/1.1" 404 20 "-" "-"`, // the listener's error page
		`] "GET /last HTTP/1.1" 200 6 "-" "-"`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("access log lacks %q:\n%s", want, data)
		}
	}
}

// rawUpstream is an upstream that speaks raw bytes: answer decides what
// each accepted connection gets, given the request head it sent.
func rawUpstream(t *testing.T, answer func(n int, c net.Conn, head string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					answer(n, c, head.String())
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func proxySite(t *testing.T, upstream string) hclconfig.Listener {
	l := loopSite(t)
	l.Routes = []hclconfig.Route{{Prefix: "/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{upstream}}}}
	return l
}

func TestLoopProxyCloseDelimited(t *testing.T) {
	// An answer without a length ends when the upstream closes: the
	// client gets it whole, then its connection closes too.
	up := rawUpstream(t, func(_ int, c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
		c.Close()
	})
	tw := startSite(t, proxySite(t, up), nil, nil)
	got := replay(t, tw.addr, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", nil)
	if len(got) != 1 || got[0].Body != "until the end" || got[0].Status != "200 OK" {
		t.Fatalf("answers: %v", got)
	}
}

func TestLoopProxyRetriesClosedPooledConnection(t *testing.T) {
	// The upstream answers one request per connection, then closes it
	// when the next request arrives, as an upstream whose keep-alive ran
	// out at that moment does: the request goes again on a new
	// connection instead of failing.
	var served sync.Map // net.Conn -> answered once
	up := rawUpstream(t, func(n int, c net.Conn, _ string) {
		if _, again := served.LoadOrStore(c, true); again {
			c.Close()
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", n%10)
	})
	tw := startSite(t, proxySite(t, up), nil, nil)
	c, br := dialSite(t, tw.addr)
	for i := range 5 {
		io.WriteString(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readAnswer(t, br, "GET")
		if resp.StatusCode != 200 || body != strconv.Itoa(i) {
			t.Fatalf("request %d: %d %q, want 200 from upstream connection %d", i, resp.StatusCode, body, i)
		}
	}
}

func TestLoopProxyTimeouts(t *testing.T) {
	// An upstream that never answers costs the request timeout: 504.
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	up := rawUpstream(t, func(_ int, c net.Conn, _ string) { <-hang })
	l := proxySite(t, up)
	l.Timeout = 300 * time.Millisecond
	tw := startSite(t, l, nil, nil)
	c, br := dialSite(t, tw.addr)
	start := time.Now()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ := readAnswer(t, br, "GET")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if took := time.Since(start); took < l.Timeout {
		t.Errorf("504 after %v, before the %v timeout", took, l.Timeout)
	}
	// The connection serves on.
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("second request: %d", resp.StatusCode)
	}
}

func TestLoopProxySlowClient(t *testing.T) {
	// A client reading slowly holds the upstream back (nothing piles up
	// in memory), and still gets every byte, of several answers in a row.
	l := loopSite(t)
	tw := startSite(t, l, nil, nil)
	c := dialSlowReader(t, tw.addr)
	var in strings.Builder
	for range 3 {
		in.WriteString("GET /proxy/big HTTP/1.1\r\nHost: x\r\n\r\nGET /proxy/chunked HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	io.WriteString(c, in.String())
	time.Sleep(300 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(waitLimit))
	br := bufio.NewReader(c)
	want := strings.Repeat("0123456789abcdef", 1<<16)
	for i := range 3 {
		if _, body := readAnswer(t, br, "GET"); body != want {
			t.Fatalf("round %d: big body of %d bytes", i, len(body))
		}
		if _, body := readAnswer(t, br, "GET"); body != "part one;part two" {
			t.Fatalf("round %d: chunked body %q", i, body)
		}
	}
}

func TestLoopProxyClientGone(t *testing.T) {
	// A client that leaves while its answer is on the way costs the
	// upstream connection, not the worker.
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	up := rawUpstream(t, func(_ int, c net.Conn, head string) {
		if strings.HasPrefix(head, "GET /hang") {
			<-hang
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tw := startSite(t, proxySite(t, up), nil, nil)
	c, _ := dialSite(t, tw.addr)
	io.WriteString(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	got := replay(t, tw.addr, "GET /fine HTTP/1.1\r\nHost: x\r\n\r\n"+closer, nil)
	if len(got) != 2 || got[0].Body != "ok" {
		t.Fatalf("after a client left: %v", got)
	}
}

func TestLoopFastStopAfterLoopEnded(t *testing.T) {
	// A drain whose loop has ended (its connections are gone) while a
	// handed-over request still runs in net/http; then a fast stop. The
	// stop must reach what is left, and nothing may talk to the ended
	// loop.
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	up := rawUpstream(t, func(_ int, c net.Conn, _ string) { <-hang })
	l := proxySite(t, up)
	l.GracefulTimeout = time.Hour
	tw := startSite(t, l, nil, nil)
	c, br := dialSite(t, tw.addr)
	// HTTP/1.0 to a proxy route is net/http's.
	io.WriteString(c, "GET /held HTTP/1.0\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	logs, _ := siteLogs.Load(tw.addr)
	waitUntil(t, "the loop, holding nothing, ends", func() bool {
		return strings.Contains(logs.(*logBuffer).String(), "event loop ended")
	})
	tw.sigs <- syscall.SIGQUIT
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the handed-over connection outlived the fast stop")
	}
}

func TestLoopSlowClientDoesNotStallOthers(t *testing.T) {
	// A client that pipelines many big answers and then a request for
	// net/http, and reads nothing, holds only its own connection: the
	// loop does not wait for it to read before the hand-over.
	tw := startSite(t, loopSite(t), nil, nil)
	slow := dialSlowReader(t, tw.addr)
	var in strings.Builder
	for range 200 {
		in.WriteString("GET /bigrespond HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	in.WriteString("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	go io.WriteString(slow, in.String())
	time.Sleep(200 * time.Millisecond)
	if got := replay(t, tw.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"+closer, nil); len(got) != 2 || got[0].Body != "hello\n" {
		t.Fatalf("another client while one does not read: %v", got)
	}
	// The slow client still gets everything, in order, once it reads.
	slow.SetReadDeadline(time.Now().Add(waitLimit))
	br := bufio.NewReader(slow)
	for i := range 200 {
		if _, body := readAnswer(t, br, "GET"); len(body) != 100<<10 {
			t.Fatalf("answer %d: %d bytes", i, len(body))
		}
	}
	if _, body := readAnswer(t, br, "POST"); body != "hello\n" {
		t.Fatalf("the handed-over request: %q", body)
	}
}

func TestLoopProxyNoRetryAfterInterim(t *testing.T) {
	// An upstream that sent anything, here a 103, then closed, is not
	// sent the request again: the client gets the 103 and a 502.
	var mu sync.Mutex
	requests := 0
	var served sync.Map
	up := rawUpstream(t, func(_ int, c net.Conn, _ string) {
		mu.Lock()
		requests++
		mu.Unlock()
		if _, again := served.LoadOrStore(c, true); again {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
			c.Close()
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tw := startSite(t, proxySite(t, up), nil, nil)
	c, br := dialSite(t, tw.addr)
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := readAnswer(t, br, "GET"); body != "ok" {
		t.Fatalf("first answer %q", body)
	}
	io.WriteString(c, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusEarlyHints {
		t.Fatalf("interim answer %d, want 103", resp.StatusCode)
	}
	resp, _ := readAnswer(t, br, "GET")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("after a 103 and a close: %d, want 502", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 2 {
		t.Fatalf("the upstream got %d requests for 2", requests)
	}
}

func TestLoopProxyChecksAnswerHeads(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		status       int
		noLength     bool
	}{
		{"bare CR in a value", "HTTP/1.1 200 OK\r\nX: a\rSet-Cookie: x=1\r\nContent-Length: 2\r\n\r\nok", 502, false},
		{"bad name", "HTTP/1.1 200 OK\r\nX Y: a\r\nContent-Length: 2\r\n\r\nok", 502, false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 502, false},
		{"chunked and a length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, true},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := rawUpstream(t, func(_ int, c net.Conn, _ string) {
				io.WriteString(c, tc.answer)
			})
			tw := startSite(t, proxySite(t, up), nil, nil)
			c, br := dialSite(t, tw.addr)
			io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if tc.status == 0 {
				// The head went out before the body broke: the
				// connection is cut.
				if err == nil {
					_, err = io.ReadAll(resp.Body)
				}
				if err == nil {
					t.Fatal("a broken chunked body arrived whole")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.noLength && (resp.Header.Get("Content-Length") != "" || resp.ContentLength != -1) {
				t.Fatalf("Content-Length %q with chunked framing", resp.Header.Get("Content-Length"))
			}
			if v := resp.Header.Get("Set-Cookie"); v != "" {
				t.Fatalf("a header smuggled through: Set-Cookie %q", v)
			}
		})
	}
}

func TestLoopProxyIgnoresBytesAfterAnswer(t *testing.T) {
	// An upstream that sends more after a complete answer (here a body
	// after a 204) has its connection retired: the stray bytes never
	// become the answer to the next request.
	var served sync.Map
	up := rawUpstream(t, func(n int, c net.Conn, _ string) {
		if _, again := served.LoadOrStore(c, true); again {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwrong")
			return
		}
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
	})
	tw := startSite(t, proxySite(t, up), nil, nil)
	c, br := dialSite(t, tw.addr)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first answer %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("second answer %d, want the 204 of a fresh connection", resp.StatusCode)
	}
}

// TestLoopProxyLimitsInterimAnswers: an upstream that sends 103 Early
// Hints without end gets its client five of them and then a 502, and the
// connection serves on; before, the loop passed them on for ever and its
// memory grew with them (474 MB in the finding).
func TestLoopProxyLimitsInterimAnswers(t *testing.T) {
	up := rawUpstream(t, func(n int, c net.Conn, head string) {
		if strings.Contains(head, "/endless") {
			hint := strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", 64)
			for {
				if _, err := io.WriteString(c, hint); err != nil {
					return
				}
			}
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </b.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tw := startSite(t, proxySite(t, up), nil, nil)
	c, br := dialSite(t, tw.addr)
	io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 5 {
		if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusEarlyHints {
			t.Fatalf("answer %d: %d, want 103", i, resp.StatusCode)
		}
	}
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("after five interim answers: %d, want 502", resp.StatusCode)
	}
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusEarlyHints {
		t.Fatalf("one interim answer: %d, want 103", resp.StatusCode)
	}
	if _, body := readAnswer(t, br, "GET"); body != "ok" {
		t.Fatalf("answer after one interim answer: %q", body)
	}
}

func TestLoopProxyVary(t *testing.T) {
	// A proxy route that compresses: the loop passes an answer on to a
	// client that takes no coding, with the Vary net/http would add.
	tw := startSite(t, loopSite(t), nil, nil)
	got := replay(t, tw.addr, "GET /zproxy/a HTTP/1.1\r\nHost: x\r\n\r\nGET /zproxy/nocontent HTTP/1.1\r\nHost: x\r\n\r\n"+closer, nil)
	if len(got) != 3 || !slices.Contains(got[0].Header, "Vary: Accept-Encoding") || slices.Contains(got[1].Header, "Vary: Accept-Encoding") {
		t.Fatalf("answers: %v", got)
	}
	v, _ := siteLogs.Load(tw.addr)
	if logs := v.(*logBuffer).String(); strings.Contains(logs, "event loop hands a connection to net/http") {
		t.Errorf("handed to net/http:\n%s", logs)
	}
}
