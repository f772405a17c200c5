package proxyproto

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewConn(c, 5*time.Second), nil
}

// TestConnServesHTTP: net/http behind Conn sees the header's client in
// RemoteAddr and the request that came in the same packet; a connection
// without a header is closed unanswered.
func TestConnServesHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	})}
	go srv.Serve(listener{ln})
	defer srv.Close()
	for _, tc := range []struct {
		name, header, want string
	}{
		{"v1", "PROXY TCP4 192.0.2.7 10.0.0.1 54321 80\r\n", "192.0.2.7:54321"},
		{"v2", string(v2(1, 0x11, []byte{198, 51, 100, 9, 10, 0, 0, 1, 0x30, 0x39, 0, 80})), "198.51.100.9:12345"},
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, tc.header+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		if got := string(b); len(got) < len(tc.want) || got[len(got)-len(tc.want):] != tc.want {
			t.Errorf("%s: answer %q, want it to end in %q", tc.name, got, tc.want)
		}
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("without a header: %q %v, want the connection closed unanswered", b, err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
