package evloop

import (
	"errors"
	"io"
	"net"
	"testing"
)

// TestPrefixConn: the bytes the loop read come first, then the socket's.
func TestPrefixConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	p := &prefixConn{Conn: a, prefix: []byte("GET / HT")}
	go func() { b.Write([]byte("TP/1.1\r\n")); b.Close() }()
	got, err := io.ReadAll(p)
	if err != nil || string(got) != "GET / HTTP/1.1\r\n" {
		t.Errorf("read %q, %v", got, err)
	}
}

// TestHandoffQueue: connections come out in order; after close, Accept
// returns what is queued, then net.ErrClosed.
func TestHandoffQueue(t *testing.T) {
	q := newHandoffQueue()
	ln := handoffListener{q: q}
	var conns []net.Conn
	for range 3 {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		conns = append(conns, a)
		q.push(a)
	}
	q.close()
	for i, want := range conns {
		got, err := ln.Accept()
		if err != nil || got != want {
			t.Fatalf("Accept %d = %v, %v", i, got, err)
		}
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after close = %v, want net.ErrClosed", err)
	}
}
