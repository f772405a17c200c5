package worker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// waitLimit bounds every wait in these tests; reaching it is a failure,
// never a measurement.
const waitLimit = 30 * time.Second

// notifySink is a real unixgram socket in the abstract namespace standing
// in for the master's NOTIFY_SOCKET.
type notifySink struct {
	addr string
	conn *net.UnixConn
	msgs chan map[string]string

	mu  sync.Mutex
	all []map[string]string
}

func newNotifySink(t testing.TB) *notifySink {
	t.Helper()
	var rnd [6]byte
	rand.Read(rnd[:])
	addr := "@hfork-worker-test-" + hex.EncodeToString(rnd[:])
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &notifySink{addr: addr, conn: conn, msgs: make(chan map[string]string, 1024)}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			m := parseNotify(string(buf[:n]))
			s.mu.Lock()
			s.all = append(s.all, m)
			s.mu.Unlock()
			s.msgs <- m
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s
}

func parseNotify(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitFor returns the first datagram that satisfies ok.
func (s *notifySink) waitFor(t testing.TB, what string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case m := <-s.msgs:
			if ok(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("no notify datagram with %s", what)
		}
	}
}

// count counts the datagrams received so far that satisfy ok.
func (s *notifySink) count(ok func(map[string]string) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.all {
		if ok(m) {
			n++
		}
	}
	return n
}

func has(k, v string) func(map[string]string) bool {
	return func(m map[string]string) bool { return m[k] == v }
}

// testWorker is a worker running in process.
type testWorker struct {
	sigs chan os.Signal
	done chan error
	sink *notifySink
	addr string
}

// testListener is a listener block with test-sized timings.
func testListener(class string) hclconfig.Listener {
	return hclconfig.Listener{
		Name:              "test",
		Class:             class,
		Workers:           1,
		Threads:           4,
		WorkerConnections: 100,
		Timeout:           2 * time.Second,
		GracefulTimeout:   5 * time.Second,
		Keepalive:         5 * time.Second,
	}
}

// startWorker runs a worker on ln (a fresh loopback listener when nil) and
// waits for READY=1.
func startWorker(t testing.TB, l hclconfig.Listener, h http.Handler, ln net.Listener, edit func(*options)) *testWorker {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	sink := newNotifySink(t)
	ns, err := wire.DialNotify(sink.addr, notifyWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	tw := &testWorker{sigs: make(chan os.Signal, 4), done: make(chan error, 1), sink: sink, addr: ln.Addr().String()}
	opts := options{
		Listener:  l,
		Listeners: []net.Listener{ln},
		Handler:   h,
		Logger:    testLogger(t),
		Notifier:  ns,
		Signals:   tw.sigs,
	}
	if edit != nil {
		edit(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { tw.done <- run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-tw.done:
		case <-time.After(waitLimit):
			t.Error("worker did not stop")
		}
	})
	sink.waitFor(t, "READY=1", has("READY", "1"))
	return tw
}

// wait waits for run to return and returns its error.
func (tw *testWorker) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-tw.done:
		tw.done <- err // for the cleanup
		return err
	case <-time.After(waitLimit):
		t.Fatal("worker did not exit")
		return nil
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func ok200(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	io.WriteString(w, "ok")
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestReadyAndHeartbeat(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		ok200(w, r)
	})
	l := testListener(hclconfig.ClassAsync)
	l.Timeout = 400 * time.Millisecond // heartbeat every 100ms
	tw := startWorker(t, l, h, nil, nil)
	c := &http.Client{}
	for range 3 {
		get(t, c, "http://"+tw.addr+"/")
	}
	m := tw.sink.waitFor(t, "3 requests served", func(m map[string]string) bool {
		n, _ := strconv.Atoi(m[wire.KeyRequests])
		return m["WATCHDOG"] == "1" && n >= 3
	})
	if m[wire.KeyInflight] != "0" || m[wire.KeyOldestMS] != "0" || m[wire.KeyOldestReq] != "" {
		t.Errorf("idle heartbeat = %v", m)
	}

	slow := make(chan error, 1)
	go func() {
		resp, err := c.Get("http://" + tw.addr + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		slow <- err
	}()
	<-entered
	m = tw.sink.waitFor(t, "an in-flight request of some age", func(m map[string]string) bool {
		ms, _ := strconv.Atoi(m[wire.KeyOldestMS])
		return m[wire.KeyInflight] == "1" && ms > 0
	})
	if m[wire.KeyOldestReq] != "GET /slow" {
		t.Errorf("%s = %q, want GET /slow", wire.KeyOldestReq, m[wire.KeyOldestReq])
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	tw.sink.waitFor(t, "4 requests served", func(m map[string]string) bool {
		return m[wire.KeyRequests] == "4" && m[wire.KeyInflight] == "0"
	})
}

func TestMaxRequestsRecyclesOnce(t *testing.T) {
	l := testListener(hclconfig.ClassThread)
	l.MaxRequests = 5
	l.Timeout = 400 * time.Millisecond
	tw := startWorker(t, l, http.HandlerFunc(ok200), nil, nil)
	c := &http.Client{}
	for range 12 {
		if resp := get(t, c, "http://"+tw.addr+"/"); resp.StatusCode != 200 {
			t.Fatalf("status %d: a worker asking to be recycled keeps serving", resp.StatusCode)
		}
	}
	tw.sink.waitFor(t, "12 requests in a heartbeat", has(wire.KeyRequests, "12"))
	// One more beat, so a second recycle message would have arrived by now.
	tw.sink.waitFor(t, "a heartbeat", has("WATCHDOG", "1"))
	if n := tw.sink.count(has(wire.KeyRecycle, "1")); n != 1 {
		t.Errorf("%s=1 sent %d times, want 1", wire.KeyRecycle, n)
	}
}

func TestMaxRequestsJitterRange(t *testing.T) {
	l := testListener(hclconfig.ClassAsync)
	l.MaxRequests, l.MaxRequestsJitter = 100, 10
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 50 {
		w, err := newWorker(options{Listener: l, Listeners: []net.Listener{ln}, Handler: http.NotFoundHandler()})
		if err != nil {
			t.Fatal(err)
		}
		if w.maxRequests < 100 || w.maxRequests > 110 {
			t.Fatalf("limit %d outside [100, 110]", w.maxRequests)
		}
	}
}

func TestReopenOnUSR1(t *testing.T) {
	var reopened atomic.Int32
	tw := startWorker(t, testListener(hclconfig.ClassAsync), http.HandlerFunc(ok200), nil, func(o *options) {
		o.Reopen = func() error { reopened.Add(1); return nil }
	})
	tw.sigs <- syscall.SIGUSR1
	deadline := time.Now().Add(waitLimit)
	for reopened.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if reopened.Load() != 1 {
		t.Fatalf("reopened %d times, want 1", reopened.Load())
	}
	// Still serving.
	get(t, &http.Client{}, "http://"+tw.addr+"/")
}

func TestMasterGoneStopsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{Listener: testListener(hclconfig.ClassAsync), Listeners: []net.Listener{ln}, Handler: h, Logger: testLogger(t)})
	}()
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	cancel(errMasterGone)
	select {
	case err := <-done:
		if !errors.Is(err, errMasterGone) {
			t.Errorf("run = %v, want %v", err, errMasterGone)
		}
	case <-time.After(waitLimit):
		t.Fatal("worker outlived its master")
	}
	if err := <-errc; err == nil {
		t.Error("the in-flight request was answered; a fast stop cuts it off")
	}
}

func TestRunRejects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		opts options
		want string
	}{
		{"exec class", options{Listener: testListener(hclconfig.ClassExec), Listeners: []net.Listener{ln}, Handler: http.NotFoundHandler()}, "not a built-in"},
		{"no sockets", options{Listener: testListener(hclconfig.ClassSync), Handler: http.NotFoundHandler()}, "no listening sockets"},
		{"no handler", options{Listener: testListener(hclconfig.ClassSync), Listeners: []net.Listener{ln}}, "no handler"},
	} {
		err := run(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: run = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestStateString(t *testing.T) {
	var got []string
	for s := stateStarting; s <= stateExited+1; s++ {
		got = append(got, s.String())
	}
	if want := "starting ready draining exited workerState(4)"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
}

// dialRaw opens a hand-driven HTTP/1.1 client connection.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// rawGet sends a GET for path on c and reads the whole response.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitLimit))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Time{})
	return resp
}
