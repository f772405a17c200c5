package evloop

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
)

func TestOutClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, 0}, {1, 0}, {2048, 0}, {2049, 1}, {4096, 1}, {4097, 2}, {64 << 10, 5}, {64<<10 + 1, -1},
	} {
		if got := outClass(tc.n); got != tc.class {
			t.Errorf("outClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
}

func TestOutPoolReuses(t *testing.T) {
	var p outPool
	b := p.get(3000)
	if len(b) != 0 || cap(b) != 4096 {
		t.Fatalf("get(3000): len %d cap %d, want an empty 4 KiB buffer", len(b), cap(b))
	}
	b = append(b, "answer"...)
	p.put(b)
	if again := p.get(4000); cap(again) != 4096 || len(again) != 0 || &again[:1][0] != &b[0] {
		t.Fatal("get after put did not return the same buffer, emptied")
	}
	// A buffer append grew past its class, and one too big for any, go
	// to the collector.
	p.put(append(make([]byte, 0, 4096), make([]byte, 5000)...))
	p.put(make([]byte, 0, 1<<20))
	for k := range p.free {
		if len(p.free[k]) != 0 {
			t.Fatalf("class %d keeps %d buffers of sizes it does not make", k, len(p.free[k]))
		}
	}
	for range outKeep + 3 {
		p.put(make([]byte, 0, 2048))
	}
	if len(p.free[0]) != outKeep {
		t.Fatalf("class 0 keeps %d buffers, want at most %d", len(p.free[0]), outKeep)
	}
}

// bigFast answers every request with a body of its size.
type bigFast struct{ body []byte }

func (f bigFast) ServeFast(req *app.FastRequest, resp *app.FastResponse) bool {
	resp.Status = 200
	resp.Head = []byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(f.body)) + "\r\n")
	resp.Body = f.body
	return true
}
func (bigFast) FastRoutes() bool              { return true }
func (bigFast) FastProxies() []*app.FastProxy { return nil }

// An answer the socket does not take at once waits in a pooled buffer of
// the connection's own, which goes back to the pool once the client took
// it all, for the next stalled answer.
func TestLoopAnswerBufferReturns(t *testing.T) {
	// Small socket buffers on both sides: of 60 KiB, more than 32 KiB waits
	// (one size of buffer) each time.
	small := func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}
	ln, err := (&net.ListenConfig{Control: small}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := []byte(strings.Repeat("x", 60<<10))
	l := startLoop(t, 8, func(c *Config) { c.Listeners, c.Fast = []net.Listener{ln}, bigFast{body} })

	// Three connections in turn, all kept open: a buffer not given back
	// stays with its connection until the loop stops.
	d := net.Dialer{Control: small}
	for i := range 3 {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The answer waits in the server's buffer until this read takes
		// it; reading it whole means the loop wrote its last byte.
		getWhole(t, c, i, len(body))
	}
	l.Stop()
	l.wait(t)
	// How much of an answer the first write takes varies with how fast
	// the client reads, so the three may wait in buffers of two sizes
	// (32 and 64 KiB); buffers not shared would leave two of a size.
	kept := 0
	for k := range l.outs.free {
		if n := len(l.outs.free[k]); n > 1 {
			t.Fatalf("the pool holds %d buffers of %d bytes after three answers in turn, want one", n, 1<<(outMinShift+k))
		}
		kept += len(l.outs.free[k])
	}
	if kept == 0 {
		t.Fatal("no buffer came back to the pool after three stalled answers")
	}
}

// getWhole asks c for "/" as the i-th request of a test and reads the
// answer to its end, which must be n bytes long.
func getWhole(t *testing.T, c net.Conn, i, n int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("answer %d: %v", i, err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || len(got) != n {
		t.Fatalf("answer %d: %d bytes, %v; want %d", i, len(got), err, n)
	}
}
