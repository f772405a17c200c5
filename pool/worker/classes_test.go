package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// quietPeriod is how long a test waits to see that something does not
// happen. Too short only lets a broken worker pass; it never fails a
// correct one.
const quietPeriod = 200 * time.Millisecond

// gauge counts handler calls in progress and remembers the most at once.
type gauge struct{ cur, peak atomic.Int32 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

// withProxy gives l a proxy route: async requests get a deadline only on
// listeners that proxy (the tests' handlers stand in for the proxy).
func withProxy(l hclconfig.Listener) hclconfig.Listener {
	l.Routes = append(l.Routes, hclconfig.Route{Prefix: "/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{"http://127.0.0.1:1"}}})
	return l
}

func TestLimitsFor(t *testing.T) {
	l := withProxy(testListener(""))
	l.Threads, l.WorkerConnections, l.Keepalive, l.Timeout = 8, 50, 3*time.Second, 7*time.Second
	for _, tc := range []struct {
		class string
		want  classLimits
	}{
		{hclconfig.ClassSync, classLimits{conns: 50, threads: 1, evict: true, oneAtATime: true, bodyBuffer: syncBodyBuffer}},
		{hclconfig.ClassThread, classLimits{conns: 50, threads: 8, keepAlive: true, idle: 3 * time.Second, evict: true}},
		{hclconfig.ClassAsync, classLimits{conns: 50, keepAlive: true, idle: 3 * time.Second, deadline: 7 * time.Second, evict: true}},
	} {
		l.Class = tc.class
		got, err := limitsFor(l)
		if err != nil || got != tc.want {
			t.Errorf("%s: limitsFor = %+v, %v; want %+v", tc.class, got, err, tc.want)
		}
	}
	l.Class = hclconfig.ClassAsync
	l.Keepalive, l.WorkerConnections, l.Timeout = 0, 0, 0
	if got, _ := limitsFor(l); got.keepAlive || got.conns != 0 || got.deadline != 0 {
		t.Errorf("zero keepalive, connections and timeout: %+v, want no keep-alive, no cap, no deadline", got)
	}
	l = testListener(hclconfig.ClassAsync)
	l.Timeout = 7 * time.Second
	if got, _ := limitsFor(l); got.deadline != 0 {
		t.Errorf("a listener without a proxy route gets a request deadline: %+v", got)
	}
}

func TestSyncServesOneConnectionAtATime(t *testing.T) {
	var g gauge
	entered, release := make(chan string, 2), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		entered <- r.URL.Path
		<-release
		ok200(w, r)
	})
	tw := startWorker(t, testListener(hclconfig.ClassSync), h, nil, nil)

	type result struct {
		path  string
		close bool
		err   error
	}
	results := make(chan result, 2)
	for _, p := range []string{"/a", "/b"} {
		go func() {
			resp, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + tw.addr + p)
			if err != nil {
				results <- result{p, false, err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// The client turns "Connection: close" into resp.Close.
			results <- result{p, resp.Close, nil}
		}()
	}
	first := <-entered
	select {
	case second := <-entered:
		t.Fatalf("%s reached the handler while %s held the only connection", second, first)
	case <-time.After(quietPeriod):
	}
	close(release)
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("%s: %v", r.path, r.err)
		}
		if !r.close {
			t.Errorf("%s: response without Connection: close", r.path)
		}
	}
	if p := g.peak.Load(); p != 1 {
		t.Errorf("%d requests at once, want 1", p)
	}
}

func TestThreadCapsHandlerCalls(t *testing.T) {
	l := testListener(hclconfig.ClassThread)
	l.Threads = 3
	var g gauge
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		time.Sleep(5 * time.Millisecond)
		ok200(w, r)
	})
	tw := startWorker(t, l, h, nil, nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 12 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{}}
			for range 5 {
				resp, err := c.Get("http://" + tw.addr + "/")
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d requests failed", failed.Load())
	}
	if p := g.peak.Load(); p < 1 || p > 3 {
		t.Errorf("%d handler calls at once, want 1..3", p)
	}
}

func TestAsyncKeepsAlive(t *testing.T) {
	tw := startWorker(t, testListener(hclconfig.ClassAsync), http.HandlerFunc(ok200), nil, nil)
	c := &http.Client{Transport: &http.Transport{}}
	var reused []bool
	for range 3 {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+tw.addr+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatal("async response says Connection: close outside a drain")
		}
	}
	if fmt.Sprint(reused) != "[false true true]" {
		t.Errorf("connection reused: %v, want [false true true]", reused)
	}
}

func TestAsyncCapsConnections(t *testing.T) {
	l := testListener(hclconfig.ClassAsync)
	l.WorkerConnections = 2
	var g gauge
	entered, release := make(chan struct{}, 3), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		ok200(w, r)
	})
	tw := startWorker(t, l, h, nil, nil)
	c1, _ := dialRaw(t, tw.addr)
	c2, br2 := dialRaw(t, tw.addr)
	c3, br3 := dialRaw(t, tw.addr)
	for _, c := range []interface{ Write([]byte) (int, error) }{c1, c2, c3} {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	<-entered
	<-entered
	select {
	case <-entered:
		t.Fatal("a third connection was served with worker_connections = 2")
	case <-time.After(quietPeriod):
	}
	// Closing one connection frees its slot for the waiting one.
	c1.Close()
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("the third connection was never served")
	}
	close(release)
	for _, br := range []*bufio.Reader{br2, br3} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("response %v, %v", resp, err)
		}
		resp.Body.Close()
	}
	if p := g.peak.Load(); p != 2 {
		t.Errorf("%d connections served at once, want 2", p)
	}
}

func TestAsyncRequestDeadline(t *testing.T) {
	l := withProxy(testListener(hclconfig.ClassAsync))
	l.Timeout = 150 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if _, ok := ctx.Deadline(); !ok {
			http.Error(w, "no deadline", 500)
			return
		}
		<-ctx.Done()
		io.WriteString(w, ctx.Err().Error())
	})
	tw := startWorker(t, l, h, nil, nil)
	resp, err := http.Get("http://" + tw.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != context.DeadlineExceeded.Error() {
		t.Errorf("body %q, want %q", body, context.DeadlineExceeded.Error())
	}
}

func TestUpgradeLiftsDeadlineAndLeavesInflight(t *testing.T) {
	l := withProxy(testListener(hclconfig.ClassAsync))
	l.Timeout = 150 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		bw.Flush()
		// The stream outlives the request deadline.
		time.Sleep(3 * l.Timeout)
		if err := r.Context().Err(); err != nil {
			fmt.Fprintf(bw, "dead: %v\n", err)
		} else {
			bw.WriteString("alive\n")
		}
		bw.Flush()
		io.Copy(io.Discard, conn) // until the client closes
	})
	tw := startWorker(t, l, h, nil, nil)
	c, br := dialRaw(t, tw.addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	tw.sink.waitFor(t, "the upgraded request out of flight", func(m map[string]string) bool {
		return m[wire.KeyRequests] == "1" && m[wire.KeyInflight] == "0"
	})
	line, err := br.ReadString('\n')
	if err != nil || line != "alive\n" {
		t.Errorf("stream said %q, %v; want alive", line, err)
	}
}

func TestRequestDeadlineContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	rd := newRequestDeadline(parent, time.Hour)
	if d, ok := rd.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("Deadline = %v, %v", d, ok)
	}
	rd.lift()
	if _, ok := rd.Deadline(); ok {
		t.Error("a lifted deadline is still reported")
	}
	cancel()
	<-rd.Done()
	if !errors.Is(rd.Err(), context.Canceled) {
		t.Errorf("Err after the parent ended = %v, want Canceled", rd.Err())
	}

	rd = newRequestDeadline(context.Background(), time.Millisecond)
	<-rd.Done()
	if rd.Err() != context.DeadlineExceeded || context.Cause(rd) != context.DeadlineExceeded {
		t.Errorf("Err = %v, Cause = %v; want DeadlineExceeded", rd.Err(), context.Cause(rd))
	}
	rd.end()
}
