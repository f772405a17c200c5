package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// waitUntil polls cond until it holds, failing the test after waitLimit.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shareListener returns a second fd of the socket behind ln, as a sibling
// worker process would hold it.
func shareListener(t *testing.T, ln net.Listener) net.Listener {
	t.Helper()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// exchange is one request of a load test client, as the client saw it.
type exchange struct {
	conn   string // the client's local address
	worker string // who answered
	close  bool   // the response said "Connection: close"
	pooled bool   // the client kept the connection for reuse afterwards
	at     time.Time
}

func TestDrainLosesNoRequest(t *testing.T) {
	// The master's fd keeps the socket open while workers come and go.
	master, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	url := "http://" + master.Addr().String() + "/echo"
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			w.Header().Set("X-Worker", name)
			w.Write(body)
		})
	}
	l := testListener(hclconfig.ClassAsync)
	l.GracefulTimeout = waitLimit
	// Closing an idle keep-alive connection races a client that sends on it
	// at that moment; no server can avoid that, and the tests of the idle
	// grace cover it. A long keep-alive keeps that race out of this test,
	// even for a client the machine starves for seconds: here the drain
	// must close every connection by "Connection: close" alone.
	l.Keepalive = time.Minute
	a := startWorker(t, l, named("a"), shareListener(t, master), nil)

	const clients, perClient = 20, 200
	var (
		completed, retries atomic.Int64
		failMu             sync.Mutex
		failures           []string
		seen               = make([][]exchange, clients)
		wg                 sync.WaitGroup
	)
	var drainAt atomic.Int64 // unix nanoseconds
	fail := func(s string) {
		failMu.Lock()
		failures = append(failures, s)
		failMu.Unlock()
	}
	for ci := range clients {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for i := range perClient {
				var local string
				var gets int
				var pooled atomic.Bool
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) {
						local = info.Conn.LocalAddr().String()
						gets++
					},
					PutIdleConn: func(err error) { pooled.Store(err == nil) },
				})
				// POST is never retried by the client once written, so a
				// request lost by the server shows up here as an error.
				body := fmt.Sprintf("client %d request %d", ci, i)
				req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
				sent := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					prev := "none"
					if n := len(seen[ci]); n > 0 {
						e := seen[ci][n-1]
						prev = fmt.Sprintf("%s on %s close=%v pooled=%v idle=%v", e.conn, e.worker, e.close, e.pooled, sent.Sub(e.at))
					}
					drain := "not yet"
					if d := drainAt.Load(); d != 0 {
						drain = sent.Sub(time.Unix(0, d)).String() + " before"
					}
					fail(fmt.Sprintf("%v (conn %s; previous exchange: %s; drain began: %s)", err, local, prev, drain))
					continue
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(got) != body {
					fail(fmt.Sprintf("%s: status %d, body %q, err %v", body, resp.StatusCode, got, err))
					continue
				}
				if gets > 1 {
					retries.Add(1)
				}
				seen[ci] = append(seen[ci], exchange{conn: local, worker: resp.Header.Get("X-Worker"), close: resp.Close, pooled: pooled.Load(), at: time.Now()})
				completed.Add(1)
			}
		})
	}

	waitUntil(t, "load on worker a", func() bool { return completed.Load() >= clients*perClient/10 })
	// The replacement is ready before the old worker drains, as the master
	// does it.
	startWorker(t, l, named("b"), shareListener(t, master), nil)
	waitUntil(t, "load on both workers", func() bool { return completed.Load() >= clients*perClient/4 })
	drainAt.Store(time.Now().UnixNano())
	a.sigs <- syscall.SIGTERM
	wg.Wait()
	if err := a.wait(t); err != nil {
		t.Errorf("drained worker: run = %v", err)
	}

	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed; first: %s", len(failures), clients*perClient, failures[0])
		for _, f := range failures {
			t.Log(f)
		}
	}
	if n := retries.Load(); n > 0 {
		t.Errorf("the client retried %d requests on connections the server had closed", n)
	}
	// A connection to the drained worker ends in one of three ways: its last
	// response said "Connection: close" (what the drain does); the client
	// gave it up by itself (net/http's client does so when its request
	// write is slow to report, which happens under load); or the server
	// closed it under a client that meant to reuse it (the race that loses
	// requests). Only the last is a failure.
	var onA, onB, closedA, givenUp int
	for ci, ex := range seen {
		for i, e := range ex {
			last := i == len(ex)-1 || ex[i+1].conn != e.conn
			if !last {
				continue
			}
			switch {
			case e.worker == "b":
				onB++
				continue
			case e.close:
				closedA++
			case i == len(ex)-1:
				// The client's last request; nothing came after it.
			case e.pooled:
				t.Errorf("client %d: worker a closed connection %s after request %d without Connection: close", ci, e.conn, i)
			default:
				givenUp++
			}
			onA++
		}
	}
	if onA == 0 || onB == 0 {
		t.Fatalf("connections: %d on a, %d on b; the test needs both", onA, onB)
	}
	if closedA == 0 {
		t.Error("no connection to the drained worker saw Connection: close")
	}
	a.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	t.Logf("%d requests; connections: %d to a (drained; %d closed with Connection: close, %d given up by the client), %d to b",
		completed.Load(), onA, closedA, givenUp, onB)
}

func TestDrainFinishesSlowRequest(t *testing.T) {
	entered := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		time.Sleep(500 * time.Millisecond)
		ok200(w, r)
	})
	tw := startWorker(t, testListener(hclconfig.ClassThread), h, nil, nil)
	type result struct {
		resp *http.Response
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + tw.addr + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp, string(b), err}
	}()
	<-entered
	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	r := <-res
	if r.err != nil || r.resp.StatusCode != 200 || r.body != "ok" {
		t.Fatalf("slow request during a drain: %v", r)
	}
	if !r.resp.Close {
		t.Error("a response written during a drain lacks Connection: close")
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestDrainClosesIdleConnAfterGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	tw := startWorker(t, testListener(hclconfig.ClassAsync), http.HandlerFunc(ok200), nil, func(o *options) {
		o.IdleGrace = grace
	})
	c, br := dialRaw(t, tw.addr)
	if resp := rawGet(t, c, br, "/"); resp.Close {
		t.Fatal("connection closed before the drain")
	}
	start := time.Now()
	tw.sigs <- syscall.SIGTERM
	c.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read = %v, want EOF", err)
	}
	if idle := time.Since(start); idle < grace {
		t.Errorf("idle connection closed after %v, before the %v grace", idle, grace)
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestDrainAnswersRequestOnIdleConn(t *testing.T) {
	tw := startWorker(t, testListener(hclconfig.ClassAsync), http.HandlerFunc(ok200), nil, nil)
	c, br := dialRaw(t, tw.addr)
	rawGet(t, c, br, "/")
	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	// The request leaves right as the drain begins, on a connection that
	// was idle when it did.
	resp := rawGet(t, c, br, "/late")
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("request on an idle connection during a drain: status %d, close %v", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close, read = %v, want EOF", err)
	}
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestDrainDeadlineClosesLeftovers(t *testing.T) {
	l := testListener(hclconfig.ClassAsync)
	l.GracefulTimeout = 300 * time.Millisecond
	l.Timeout = 0
	stuck := make(chan struct{})
	defer close(stuck)
	entered := make(chan struct{}, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			conn, bw, _ := http.NewResponseController(w).Hijack()
			bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
			bw.Flush()
			entered <- struct{}{}
			<-stuck
			conn.Close()
			return
		}
		entered <- struct{}{}
		<-stuck
	})
	tw := startWorker(t, l, h, nil, nil)
	ws, wsr := dialRaw(t, tw.addr)
	io.WriteString(ws, "GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	if resp, err := http.ReadResponse(wsr, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	<-entered
	slow, slowr := dialRaw(t, tw.addr)
	io.WriteString(slow, "GET /stuck HTTP/1.1\r\nHost: test\r\n\r\n")
	<-entered

	tw.sigs <- syscall.SIGTERM
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
	for name, r := range map[string]io.ByteReader{"upgraded": wsr, "stuck": slowr} {
		ws.SetReadDeadline(time.Now().Add(waitLimit))
		slow.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s connection after graceful_timeout: read = %v, want it closed", name, err)
		}
	}
}

func TestFastStop(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			stuck := make(chan struct{})
			defer close(stuck)
			entered := make(chan struct{}, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/stuck" {
					entered <- struct{}{}
					<-stuck
				}
				ok200(w, r)
			})
			tw := startWorker(t, testListener(hclconfig.ClassAsync), h, nil, nil)
			idle, idler := dialRaw(t, tw.addr)
			rawGet(t, idle, idler, "/")
			busy, busyr := dialRaw(t, tw.addr)
			io.WriteString(busy, "GET /stuck HTTP/1.1\r\nHost: test\r\n\r\n")
			<-entered

			tw.sigs <- sig
			if err := tw.wait(t); err != nil {
				t.Errorf("run = %v", err)
			}
			for name, c := range map[string]net.Conn{"idle": idle, "busy": busy} {
				c.SetReadDeadline(time.Now().Add(waitLimit))
				br := map[string]io.ByteReader{"idle": idler, "busy": busyr}[name]
				if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("%s connection after a fast stop: read = %v, want it closed", name, err)
				}
			}
			if c, err := net.Dial("tcp", tw.addr); err == nil {
				c.Close()
				t.Error("still accepting after a fast stop")
			}
		})
	}
}

func TestFastStopDuringDrain(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	entered := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-stuck
	})
	l := testListener(hclconfig.ClassThread)
	l.GracefulTimeout = time.Hour
	tw := startWorker(t, l, h, nil, nil)
	c, br := dialRaw(t, tw.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
	<-entered
	tw.sigs <- syscall.SIGTERM
	tw.sink.waitFor(t, "STOPPING=1", has("STOPPING", "1"))
	tw.sigs <- syscall.SIGQUIT
	if err := tw.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
	c.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("busy connection after SIGQUIT during a drain: read = %v, want it closed", err)
	}
}
