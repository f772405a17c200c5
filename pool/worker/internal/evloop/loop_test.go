package evloop

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
)

// fakeFast answers "/" itself, forwards "/up" to its upstream, and leaves
// everything else to net/http.
type fakeFast struct{ up *app.FastProxy }

func (f fakeFast) ServeFast(req *app.FastRequest, resp *app.FastResponse) bool {
	switch {
	case req.Path == "/":
		resp.Status = 200
		resp.Head = []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n")
		resp.Body = []byte("hi\n")
		return true
	case req.Path == "/up" && f.up != nil:
		resp.Proxy = f.up
		return true
	}
	return false
}

func (f fakeFast) FastRoutes() bool { return true }

func (f fakeFast) FastProxies() []*app.FastProxy {
	if f.up == nil {
		return nil
	}
	return []*app.FastProxy{f.up}
}

// fakeHost is a worker with slots connection slots.
type fakeHost struct {
	slots   chan struct{}
	served  atomic.Int64
	status  atomic.Int64 // of the last answer served
	evicted atomic.Int64
	drained atomic.Int64
	adopted chan net.Conn
	perIP   int
	mu      sync.Mutex
	byIP    map[netip.Addr]int
}

func newHost(slots int) *fakeHost {
	return &fakeHost{slots: make(chan struct{}, slots), adopted: make(chan net.Conn, 8)}
}

func (h *fakeHost) Acquire() bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
		return false
	}
}
func (h *fakeHost) Release()                 { <-h.slots }
func (h *fakeHost) Route(string, string) int { return 0 }
func (h *fakeHost) Served(route, status int, bytes int64, began int64) {
	h.status.Store(int64(status))
	h.served.Add(1)
}
func (h *fakeHost) DrainIdleClosed()                           { h.drained.Add(1) }
func (h *fakeHost) Adopt(c net.Conn, _ netip.Addr) net.Conn    { h.adopted <- c; return c }
func (h *fakeHost) AdoptTLS(c net.Conn, _ netip.Addr) net.Conn { return c }
func (h *fakeHost) Evicted(time.Time)                          { h.evicted.Add(1) }

// Admit and Leave keep at most perIP connections per address.
func (h *fakeHost) Admit(ip netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byIP == nil {
		h.byIP = map[netip.Addr]int{}
	}
	if h.byIP[ip] >= h.perIP {
		return false
	}
	h.byIP[ip]++
	return true
}

func (h *fakeHost) Leave(ip netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byIP[ip]--
}

func (h *fakeHost) count(ip netip.Addr) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byIP[ip]
}

// syncLog is a log the test reads while the loop writes it.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLog waits for a line containing want, bounded by five seconds.
func (s *syncLog) waitLog(t *testing.T, want string) {
	t.Helper()
	for start := time.Now(); !strings.Contains(s.String(), want); {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("no %q in the log:\n%s", want, s.String())
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

type testLoop struct {
	*Loop
	host *fakeHost
	addr string
	log  *syncLog
	err  chan error
}

func startLoop(t testing.TB, slots int, edit func(*Config)) *testLoop {
	t.Helper()
	return startLoopWith(t, slots, edit, nil)
}

// startLoopWith is startLoop with prep run on the loop before it runs.
func startLoopWith(t testing.TB, slots int, edit func(*Config), prep func(*Loop)) *testLoop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	logs := &syncLog{}
	cfg := Config{
		Listeners: []net.Listener{ln}, Fast: fakeFast{},
		Log:               slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReadHeaderTimeout: 5 * time.Second, Idle: time.Minute, Grace: time.Millisecond, KeepAlive: true,
	}
	if edit != nil {
		edit(&cfg)
	}
	h := newHost(slots)
	l, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(l)
	}
	tl := &testLoop{Loop: l, host: h, addr: ln.Addr().String(), log: logs, err: make(chan error, 1)}
	go func() { tl.err <- l.Run() }()
	t.Cleanup(func() {
		l.Stop()
		tl.wait(t)
		if t.Failed() {
			t.Logf("loop log:\n%s", logs.String())
		}
	})
	return tl
}

// wait waits for Run to return, bounded by ten seconds.
func (tl *testLoop) wait(t testing.TB) {
	t.Helper()
	select {
	case <-tl.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not end")
	}
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestLoopServes: answers on one keep-alive connection, each counted
// with the host, and the connection's slot taken from it.
func TestLoopServes(t *testing.T) {
	tl := startLoop(t, 4, nil)
	c, br := dial(t, tl.addr)
	for i := 1; i <= 3; i++ {
		resp, body := get(t, c, br, "/")
		if resp.StatusCode != 200 || body != "hi\n" || resp.Header.Get("Date") == "" || resp.Close {
			t.Fatalf("request %d: %d %q Date=%q close=%v", i, resp.StatusCode, body, resp.Header.Get("Date"), resp.Close)
		}
		if n, st := tl.host.served.Load(), tl.host.status.Load(); n != int64(i) || st != 200 {
			t.Fatalf("served = %d (last status %d) after %d requests", n, st, i)
		}
	}
	if n := len(tl.host.slots); n != 1 {
		t.Errorf("slots held = %d, want 1", n)
	}
	if n := tl.Open(); n != 1 {
		t.Errorf("Open = %d, want 1", n)
	}
}

// TestLoopHandsOver: a request the loop does not answer reaches the host
// with every byte read so far, and the loop lets the connection go.
func TestLoopHandsOver(t *testing.T) {
	tl := startLoop(t, 4, nil)
	c, _ := dial(t, tl.addr)
	req := "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	io.WriteString(c, req)
	var nc net.Conn
	select {
	case nc = <-tl.host.adopted:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing handed over")
	}
	served := tl.Handoffs(nil)
	got, err := served.Accept()
	if err != nil || got != nc {
		t.Fatalf("Handoffs().Accept = %v, %v; want the adopted conn", got, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, len(req))
	if _, err := io.ReadFull(nc, b); err != nil || string(b) != req {
		t.Fatalf("handed-over conn reads %q, %v; want %q", b, err, req)
	}
	if n := tl.Open(); n != 0 {
		t.Errorf("Open = %d after the handover, want 0", n)
	}
	if n := len(tl.host.slots); n != 1 {
		t.Errorf("slots held = %d, want 1 (the slot goes with the conn)", n)
	}
}

// TestLoopAtSlotLimit: with every slot held, the next client waits in the
// queue, and is served once a slot frees.
func TestLoopAtSlotLimit(t *testing.T) {
	tl := startLoop(t, 1, nil)
	c1, br1 := dial(t, tl.addr)
	get(t, c1, br1, "/")
	c2, br2 := dial(t, tl.addr)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c1.Close()
	resp, err := http.ReadResponse(br2, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("second client: %v, %v", resp, err)
	}
	resp.Body.Close()
	if n := tl.host.served.Load(); n != 2 {
		t.Errorf("served = %d, want 2", n)
	}
}

// TestLoopDrain: a drain closes an idle connection after the grace and
// the loop ends holding nothing, with every slot given back.
func TestLoopDrain(t *testing.T) {
	tl := startLoop(t, 4, nil)
	c, br := dial(t, tl.addr)
	get(t, c, br, "/")
	tl.Drain()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection in a drain: read %v, want EOF", err)
	}
	tl.wait(t)
	if err := <-tl.err; err != nil {
		t.Errorf("Run = %v", err)
	}
	if n := len(tl.host.slots); n != 0 {
		t.Errorf("slots held after the drain = %d", n)
	}
	tl.log.waitLog(t, "event loop ended")
	// Once ended, it takes no command.
	tl.Stop()
	tl.Drain()
}

// TestLoopStop: Stop closes what the loop holds at once.
func TestLoopStop(t *testing.T) {
	tl := startLoop(t, 4, nil)
	c, br := dial(t, tl.addr)
	get(t, c, br, "/")
	tl.Stop()
	tl.wait(t)
	if _, err := br.ReadByte(); err == nil {
		t.Error("connection outlived Stop")
	}
	if n := len(tl.host.slots); n != 0 {
		t.Errorf("slots held after Stop = %d", n)
	}
}

// TestLoopGOMAXPROCS: the loop raises GOMAXPROCS to 2, unless the
// operator set it.
func TestLoopGOMAXPROCS(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	env, had := os.LookupEnv("GOMAXPROCS")
	t.Cleanup(func() {
		runtime.GOMAXPROCS(old)
		if had {
			os.Setenv("GOMAXPROCS", env)
		} else {
			os.Unsetenv("GOMAXPROCS")
		}
	})
	for _, tc := range []struct {
		env  string
		want int
		line string
	}{
		{"1", 1, "event loop keeps GOMAXPROCS from the environment"},
		{"", 2, "event loop raised GOMAXPROCS"},
	} {
		if tc.env != "" {
			os.Setenv("GOMAXPROCS", tc.env)
		} else {
			os.Unsetenv("GOMAXPROCS")
		}
		runtime.GOMAXPROCS(1)
		tl := startLoop(t, 1, nil)
		tl.log.waitLog(t, tc.line)
		if got := runtime.GOMAXPROCS(0); got != tc.want {
			t.Errorf("GOMAXPROCS env %q: %d, want %d", tc.env, got, tc.want)
		}
		tl.Stop()
		tl.wait(t)
	}
}
