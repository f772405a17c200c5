package worker

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// slowClients opens n connections to addr that send start, then a byte
// of more every 100ms until the test ends: slowloris (a head that never
// ends) or a body that trickles.
func slowClients(t *testing.T, addr string, n int, start, more string) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{}, n)
	t.Cleanup(func() {
		close(stop)
		for range n {
			<-done
		}
	})
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		go func() {
			defer func() { c.Close(); done <- struct{}{} }()
			if _, err := io.WriteString(c, start); err != nil {
				return
			}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{more[i%len(more)]}); err != nil {
					return
				}
			}
		}()
	}
}

// openConns is a heartbeat's count of open connections.
func openConns(m map[string]string) int {
	open, _, _ := strings.Cut(m[wire.KeyConns], ",")
	n, _ := strconv.Atoi(open)
	return n
}

// TestSlowClientsDoNotBlockSync: 10 and 100 clients that trickle their
// heads (slowloris) or their bodies are all held by a one-worker sync
// listener at once, and a client that sends its request whole is still
// answered, long before read_header_timeout could free anything: a
// request takes the worker's only slot once its head (and the start of
// its body) arrived. Before, the first slow client held the worker until
// read_header_timeout.
func TestSlowClientsDoNotBlockSync(t *testing.T) {
	for _, tc := range []struct {
		name, start, more string
	}{
		{"slowloris", "GET / HTTP/1.1\r\nHost: slow\r\n", "X-a: b\r\n"},
		{"slowbody", "POST / HTTP/1.1\r\nHost: slow\r\nContent-Length: 100000\r\n\r\nabc", "x"},
	} {
		for _, n := range []int{10, 100} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, n), func(t *testing.T) {
				l := testListener(hclconfig.ClassSync)
				l.WorkerConnections = 2 * n // a body being read is not evicted
				l.ReadHeaderTimeout = 5 * time.Minute
				l.Timeout = 5 * time.Minute
				tw := startWorker(t, l, http.HandlerFunc(ok200), nil, nil)
				slowClients(t, tw.addr, n, tc.start, tc.more)
				tw.sink.waitFor(t, fmt.Sprintf("%d connections open", n), func(m map[string]string) bool { return openConns(m) >= n })
				if got := probe(tw.addr); got != "200 OK" {
					t.Fatalf("a whole request behind %d slow clients: %s", n, got)
				}
			})
		}
	}
}

// TestSlowlorisSyncCut: a sync worker still closes a head that has not
// arrived within read_header_timeout.
func TestSlowlorisSyncCut(t *testing.T) {
	l := testListener(hclconfig.ClassSync)
	l.ReadHeaderTimeout = time.Second
	tw := startWorker(t, l, http.HandlerFunc(ok200), nil, nil)
	c, err := net.Dial("tcp", tw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: slow\r\n")
	c.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the slowloris connection was not closed: %v", err)
	}
}

// TestSyncBufferedBody: a body read ahead of the slot reaches the app
// whole, small or past the buffer, chunked or by length.
func TestSyncBufferedBody(t *testing.T) {
	tw := startWorker(t, testListener(hclconfig.ClassSync), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	}), nil, nil)
	for _, size := range []int{5, syncBodyBuffer, syncBodyBuffer + 12345} {
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(strings.Repeat("b", size))
			if chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			resp, err := http.Post("http://"+tw.addr+"/", "text/plain", body)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != strconv.Itoa(size) {
				t.Errorf("%d bytes (chunked %v): the app read %s", size, chunked, got)
			}
		}
	}
}

// TestSyncBodyOverLimitUnread: a sync request whose Content-Length is
// over max_body_bytes gets its 413 without the body being read ahead of
// the slot (the client here never sends it), and a chunked body past the
// limit is refused too.
func TestSyncBodyOverLimitUnread(t *testing.T) {
	l := testListener(hclconfig.ClassSync)
	l.MaxBodyBytes = 1000
	tw := startWorker(t, l, handler(l, http.HandlerFunc(ok200)), nil, nil)
	if got := rawExchange(t, tw.addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("Content-Length 5000, no body sent: %q, want 413", got)
	}
	chunk := strings.Repeat("x", 600)
	chunked := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" + chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n"
	if got := rawExchange(t, tw.addr, chunked); !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("1200 chunked bytes: %q, want 413", got)
	}
}
