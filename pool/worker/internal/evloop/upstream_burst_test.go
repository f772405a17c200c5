package evloop

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// barrierBackend answers no request until n are waiting, so that n
// exchanges are in flight at once, each on an upstream connection of its
// own; it counts the connections it accepted and those that closed.
type barrierBackend struct {
	n              int
	mu             sync.Mutex
	waiting        int
	release        chan struct{}
	opened, closed atomic.Int64
}

func (b *barrierBackend) wait() {
	b.mu.Lock()
	b.waiting++
	ch := b.release
	if b.waiting == b.n {
		close(ch)
		b.waiting, b.release = 0, make(chan struct{})
	}
	b.mu.Unlock()
	<-ch
}

func (b *barrierBackend) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.opened.Add(1)
		go func() {
			defer func() { c.Close(); b.closed.Add(1) }()
			br := bufio.NewReader(c)
			for {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				b.wait()
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		}()
	}
}

// A burst of exchanges leaves its upstream connections idle beyond the
// pool's usual bound: the next burst reuses them all, and those beyond
// the bound close once idle for upExtra.
func TestUpstreamPoolKeepsABurst(t *testing.T) {
	const burst, keep = 6, 2
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upLn.Close()
	be := &barrierBackend{n: burst, release: make(chan struct{})}
	go be.serve(upLn)
	up := proxyTo(t, hclconfig.Proxy{Upstream: []string{"http://" + upLn.Addr().String()}})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l, err := New(Config{
		Listeners: []net.Listener{ln}, Fast: fakeFast{up: up}, Log: slog.New(slog.DiscardHandler),
		ReadHeaderTimeout: 5 * time.Second, Idle: time.Minute, KeepAlive: true,
	}, newHost(2*burst))
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for two rounds in a row to find the burst's connections
	// still there; the test then waits for it.
	l.upKeep, l.upExtra = keep, int64(3*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- l.Run() }()
	defer func() {
		l.Stop()
		<-errc
	}()

	clients := make([]net.Conn, burst)
	readers := make([]*bufio.Reader, burst)
	for i := range clients {
		clients[i], readers[i] = dial(t, ln.Addr().String())
	}
	// round sends n of the clients' requests at once; the backend answers
	// them together.
	round := func(name string, n int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fmt.Fprintf(clients[i], "GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(readers[i], nil)
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(body) != "ok" {
					errs <- fmt.Errorf("%d %q", resp.StatusCode, body)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", name, err)
		}
	}
	round("first burst", burst)
	if n := be.opened.Load(); n != burst {
		t.Fatalf("first burst: %d upstream connections, want %d", n, burst)
	}
	round("second burst", burst)
	if n := be.opened.Load(); n != burst {
		t.Fatalf("second burst opened %d more upstream connections, want none (all %d kept)", n-burst, burst)
	}

	// Those beyond keep close once idle for upExtra, and only those.
	for start := time.Now(); be.closed.Load() < burst-keep; {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("%d of the %d extra idle upstream connections closed", be.closed.Load(), burst-keep)
		}
		time.Sleep(10 * time.Millisecond)
	}
	be.mu.Lock()
	be.n = keep
	be.mu.Unlock()
	round("after the extra ones closed", keep)
	if n, c := be.opened.Load(), be.closed.Load(); n != burst || c != burst-keep {
		t.Fatalf("after the burst: %d opened, %d closed; want %d and %d (the %d kept reused)", n, c, burst, burst-keep, keep)
	}
}
