package worker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"
)

// bareWorker is just enough worker to track connections.
func bareWorker(connSlots int) *worker {
	return &worker{
		conns:    make(map[*trackedConn]struct{}),
		connGone: make(chan struct{}, 1),
		connSem:  semaphore(connSlots),
	}
}

// connPair returns a tracked server side and its client over loopback.
func connPair(t *testing.T, w *worker) (*trackedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := w.adopt(nc, netip.Addr{})
	t.Cleanup(func() { c.Close() })
	return c, client
}

func TestKickClosesSilentIdleConn(t *testing.T) {
	c, _ := connPair(t, bareWorker(0))
	c.setState(http.StateIdle, time.Now())
	now := time.Now()
	if c.kick(now, now, time.Second) {
		t.Fatal("kicked before the grace")
	}
	if !c.kick(now.Add(time.Second), now, time.Second) {
		t.Fatal("not kicked after the grace")
	}
	if _, err := c.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("read of a kicked idle connection = %v, want EOF", err)
	}
}

func TestKickGraceCountsFromDrainStart(t *testing.T) {
	c, _ := connPair(t, bareWorker(0))
	idleSince := time.Now()
	c.setState(http.StateIdle, idleSince)
	drain := idleSince.Add(time.Hour) // idle long before the drain
	if c.kick(drain, drain, time.Second) {
		t.Fatal("a connection idle before the drain was kicked at its start")
	}
	if !c.kick(drain.Add(time.Second), drain, time.Second) {
		t.Fatal("not kicked a grace after the drain began")
	}
}

func TestKickSparesBusyConns(t *testing.T) {
	c, client := connPair(t, bareWorker(0))
	far := time.Now().Add(time.Hour)
	c.setState(http.StateActive, time.Time{})
	if c.kick(far, far, 0) {
		t.Error("kicked a connection with a request in flight")
	}
	c.setState(http.StateIdle, time.Now())
	io.WriteString(client, "GET")
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if c.kick(far, far, 0) {
		t.Error("kicked an idle connection on which a request had begun to arrive")
	}
}

func TestKickLosesToArrivedBytes(t *testing.T) {
	c, client := connPair(t, bareWorker(0))
	c.setState(http.StateIdle, time.Now())
	// The request reaches the kernel before the kick, but the server has
	// not read it yet: the kick must not turn it into an EOF.
	io.WriteString(client, "GET / HTTP/1.1\r\n")
	deadline := time.Now().Add(waitLimit)
	for !pending(c.Conn) {
		if time.Now().After(deadline) {
			t.Fatal("bytes never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	far := time.Now().Add(time.Hour)
	if !c.kick(far, far, 0) {
		t.Fatal("not kicked")
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("read = %q, %v; want the request", buf[:n], err)
	}
	// The wake-up is undone: the rest of the request is read normally.
	go func() {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(client, "Host: x\r\n\r\n")
	}()
	if n, err = c.Read(buf); err != nil || string(buf[:n]) != "Host: x\r\n\r\n" {
		t.Fatalf("second read = %q, %v", buf[:n], err)
	}
}

func TestCloseForgetsOnce(t *testing.T) {
	w := bareWorker(2)
	w.connSem <- struct{}{} // the slot Accept would have taken
	c, _ := connPair(t, w)
	if len(w.conns) != 1 {
		t.Fatalf("%d tracked, want 1", len(w.conns))
	}
	c.Close()
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
	if len(w.conns) != 0 || len(w.connSem) != 0 {
		t.Errorf("after Close: %d tracked, %d slots taken; want 0, 0", len(w.conns), len(w.connSem))
	}
}

func TestGatedListenerWaitsForASlot(t *testing.T) {
	w := bareWorker(1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := &gatedListener{Listener: ln, w: w, done: make(chan struct{})}
	defer gl.Close()
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, err := gl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan net.Conn, 1)
	go func() {
		c, err := gl.Accept()
		if err != nil {
			close(second)
			return
		}
		second <- c
	}()
	select {
	case <-second:
		t.Fatal("accepted a second connection with one slot")
	case <-time.After(quietPeriod):
	}
	first.Close()
	select {
	case c, ok := <-second:
		if !ok {
			t.Fatal("Accept failed")
		}
		c.Close()
	case <-time.After(waitLimit):
		t.Fatal("the freed slot was never used")
	}
}

func TestGatedListenerCloseWakesAccept(t *testing.T) {
	w := bareWorker(1)
	w.connSem <- struct{}{} // every slot taken
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := &gatedListener{Listener: ln, w: w, done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := gl.Accept()
		errc <- err
	}()
	gl.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept = %v, want net.ErrClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close did not wake Accept")
	}
}

// TestTrackedConnKeepsSendfile: a trackedConn over a TCP connection hands
// a file to the TCP connection's ReadFrom (sendfile), and the bytes arrive.
func TestTrackedConnKeepsSendfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- b
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var tc io.Writer = &trackedConn{Conn: nc, w: &worker{}}
	if _, ok := tc.(io.ReaderFrom); !ok {
		t.Fatal("trackedConn has no ReadFrom: net/http would not use sendfile")
	}
	f, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 8192)
	f.Write(want)
	f.Seek(0, 0)
	n, err := tc.(io.ReaderFrom).ReadFrom(f)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	nc.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, want %d", len(b), len(want))
	}
}
