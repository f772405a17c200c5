package worker

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// rawExchange sends req on a new connection and returns the status line of
// the answer ("" if the server closed without one).
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestHeaderLimit(t *testing.T) {
	l := testListener(hclconfig.ClassAsync)
	l.MaxHeaderBytes = 2048
	tw := startWorker(t, l, http.HandlerFunc(ok200), nil, nil)
	// net/http allows 4 KiB of slack over max_header_bytes
	big := "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 8<<10) + "\r\n\r\n"
	if got := rawExchange(t, tw.addr, big); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Errorf("8 KiB header over a 2 KiB limit: %q, want 431", got)
	}
	small := "GET / HTTP/1.1\r\nHost: a\r\nX-Small: " + strings.Repeat("x", 1000) + "\r\n\r\n"
	if got := rawExchange(t, tw.addr, small); got != "HTTP/1.1 200 OK" {
		t.Errorf("1 KiB header: %q", got)
	}
}

func TestBodyLimitServed(t *testing.T) {
	l := testListener(hclconfig.ClassThread)
	l.MaxBodyBytes = 1000
	called := make(chan struct{}, 10)
	tw := startWorker(t, l, handler(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		upstreamLike(w, r)
	})), nil, nil)
	// Expect: 100-continue with a length over the limit: 413 at once, and
	// the client never sends the body.
	got := rawExchange(t, tw.addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("Content-Length 5000: %q, want 413", got)
	}
	chunk := strings.Repeat("x", 600)
	chunked := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"258\r\n" + chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n"
	if got := rawExchange(t, tw.addr, chunked); !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("1200 chunked bytes: %q, want 413", got)
	}
	if len(called) != 1 {
		t.Errorf("the app ran %d times, want once (for the chunked body only)", len(called))
	}
}

// TestMalformedRequests: net/http refuses them with a 4xx or 5xx; nothing
// panics, the worker keeps serving, and each refusal is a debug line.
func TestMalformedRequests(t *testing.T) {
	var logs logBuffer
	tw := startWorker(t, testListener(hclconfig.ClassAsync), http.HandlerFunc(ok200), nil, func(o *options) {
		o.Logger = logs.logger()
	})
	for req, want := range map[string]string{
		"GARBAGE\r\n\r\n":                                                              "HTTP/1.1 400",
		"GET / HTTP/1.1\r\n\r\n":                                                       "HTTP/1.1 400", // no Host
		"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n":                              "HTTP/1.1 400",
		"GET / HTTP/9.9\r\nHost: a\r\n\r\n":                                            "HTTP/1.1 505",
		"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n":                                        "HTTP/1.1 400",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n":                     "HTTP/1.1 400",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n": "HTTP/1.1 400",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n":                "HTTP/1.1 400",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n":                                 "HTTP/1.1 400",
	} {
		if got := rawExchange(t, tw.addr, req); !strings.HasPrefix(got, want) {
			t.Errorf("%q: %q, want %s", req, got, want)
		}
	}
	if got := rawExchange(t, tw.addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); got != "HTTP/1.1 200 OK" {
		t.Fatalf("after the malformed requests: %q", got)
	}
	deadline := time.Now().Add(waitLimit)
	for strings.Count(logs.String(), "request refused before the routes") < 9 {
		if time.Now().After(deadline) {
			t.Fatalf("refusals logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `reason="answered 400 Bad Request`) || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("log lines do not say why at debug:\n%s", logs.String())
	}
}

// raiseNoFile lifts the soft fd limit to the hard one and returns how many
// connections the test may open on both ends.
func raiseNoFile(t *testing.T) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		saved := lim.Cur
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
			t.Cleanup(func() { lim.Cur = saved; syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
		} else {
			lim.Cur = saved
		}
	}
	return int(min(lim.Cur, 1<<20)-200) / 2
}

// TestIdleConnectionsDoNotStarve: an async worker whose worker_connections
// are all taken by idle clients (silent new ones and idle keep-alive ones)
// closes the oldest of them for a new client, which is served at once
// instead of waiting for read_header_timeout or keepalive.
func TestIdleConnectionsDoNotStarve(t *testing.T) {
	n := min(1000, raiseNoFile(t))
	if n < 100 {
		t.Skipf("fd limit allows only %d connections", n)
	}
	l := testListener(hclconfig.ClassAsync)
	l.WorkerConnections = n
	l.Keepalive = time.Minute
	l.ReadHeaderTimeout = time.Minute
	var logs logBuffer
	tw := startWorker(t, l, http.HandlerFunc(ok200), nil, func(o *options) { o.Logger = logs.logger() })

	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", tw.addr, 10*time.Second)
			if err != nil {
				return
			}
			if i%2 == 0 {
				// an idle keep-alive connection: one request, then silence
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d idle connections open (worker_connections %d)", len(conns), n)

	start := time.Now()
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		resp, err := c.Get("http://" + tw.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	took := time.Since(start)
	t.Logf("three new clients served in %v", took)
	if took > 5*time.Second {
		t.Errorf("new clients waited %v behind idle connections", took)
	}
	if !strings.Contains(logs.String(), "closing idle connections to accept new ones") {
		t.Errorf("no eviction was logged:\n%s", logs.String())
	}
}
