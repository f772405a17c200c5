package h1

import (
	"bytes"
	"testing"
)

// FuzzParse: whatever arrives, the parser returns without a panic, and
// what it accepts is a complete head it can account for.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		wrkHead, browserHead,
		"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"\n\r\n\r\n",
		"GET / HTTP/1.1Z\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\n",
		"GET /a?b HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nRange: bytes=1-\r\n\r\n",
		"GET / HTTP/1.1\r\n:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: ,,\r\n\r\n",
		"GET",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		n, res := Parse(b, &r)
		switch res {
		case OK:
			if n < 4 || n > len(b) || !bytes.Equal(b[n-4:n], []byte("\r\n\r\n")) {
				t.Fatalf("OK with n=%d for %q", n, b)
			}
			if r.Method != "GET" && r.Method != "HEAD" || len(r.Path) == 0 || r.Path[0] != '/' {
				t.Fatalf("OK with method %q path %q", r.Method, r.Path)
			}
			if bytes.Count(b[:n], []byte("\n")) != bytes.Count(b[:n], []byte("\r\n")) {
				t.Fatalf("OK with a bare LF: %q", b[:n])
			}
		case More:
			if bytes.Contains(b, []byte("\r\n\r\n")) {
				t.Fatalf("More with a complete head: %q", b)
			}
		}
	})
}
