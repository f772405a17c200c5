package h1

import (
	"bytes"
	"testing"

	"github.com/hfork/hfork/pool/worker/app"
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

// TestParse is the parser's table: each head, what it makes of it, and for
// OK the fields it fills.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		res      Result
		want     Request // for OK: the fields compared
	}{
		{"wrk", wrkHead, OK, Request{Target: "/", Minor: 1, Host: "127.0.0.1:8080"}},
		{"query", "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n", OK,
			Request{Target: "/a/b?x=1&y=%20", Minor: 1, Host: "h"}},
		{"head method", "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", OK, Request{Target: "/x", Minor: 1, Host: "h"}},
		{"http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", OK, Request{Target: "/", Minor: 0, Close: true}},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", OK, Request{Target: "/", Minor: 0}},
		{"connection close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", OK,
			Request{Target: "/", Minor: 1, Host: "h", Close: true}},
		{"case of names", "GET / HTTP/1.1\r\nhOsT: h\r\nUSER-AGENT: ua\r\nreferer: r\r\n\r\n", OK,
			Request{Target: "/", Minor: 1, Host: "h", UserAgent: "ua", Referer: "r"}},
		{"value trimmed", "GET / HTTP/1.1\r\nHost: \t h \t\r\n\r\n", OK, Request{Target: "/", Minor: 1, Host: "h"}},
		{"zero content-length", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", OK,
			Request{Target: "/", Minor: 1, Host: "h", zeroCL: true}},
		{"first user-agent kept", "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\nUser-Agent: b\r\n\r\n", OK,
			Request{Target: "/", Minor: 1, Host: "h", UserAgent: "a"}},

		{"empty", "", More, Request{}},
		{"line only", "GET / HTTP/1.1\r\n", More, Request{}},
		{"half the end", "GET / HTTP/1.1\r\nHost: h\r\n\r", More, Request{}},

		{"post", "POST / HTTP/1.1\r\nHost: h\r\n\r\n", NotFast, Request{}},
		{"lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", NotFast, Request{}},
		{"absolute target", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", NotFast, Request{}},
		{"escape in path", "GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", NotFast, Request{}},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", NotFast, Request{}},
		{"http/2 line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", NotFast, Request{}},
		{"no host", "GET / HTTP/1.1\r\n\r\n", NotFast, Request{}},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", NotFast, Request{}},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", NotFast, Request{}},
		{"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", NotFast, Request{}},
		{"bare LF", "GET / HTTP/1.1\nHost: h\n\n", NotFast, Request{}},
		{"leading LF", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", NotFast, Request{}},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", NotFast, Request{}},
		{"space in name", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", NotFast, Request{}},
		{"control in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", NotFast, Request{}},
		{"body", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", NotFast, Request{}},
		{"two zero lengths", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", NotFast, Request{}},
		{"chunked", "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", NotFast, Request{}},
		{"expect", "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", NotFast, Request{}},
		{"upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", NotFast, Request{}},
		{"trailer", "GET / HTTP/1.1\r\nHost: h\r\nTrailer: x\r\n\r\n", NotFast, Request{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, res := Parse([]byte(tc.in), &r)
			if res != tc.res {
				t.Fatalf("Parse(%q) = %v, want %v", tc.in, res, tc.res)
			}
			if res != OK {
				return
			}
			if n != len(tc.in) {
				t.Errorf("n = %d, want %d", n, len(tc.in))
			}
			got := r
			got.FastRequest = app.FastRequest{}
			if got != tc.want {
				t.Errorf("Parse(%q) =\n%+v, want\n%+v", tc.in, got, tc.want)
			}
		})
	}
}

// TestParseFastRequest: what the routes see.
func TestParseFastRequest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want app.FastRequest
	}{
		{"GET /p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", app.FastRequest{Host: "h", Method: "GET", Path: "/p", Query: "q=1", Forwardable: true}},
		{"HEAD /p HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n", app.FastRequest{Host: "h", Method: "HEAD", Path: "/p", Conditional: true, Forwardable: true}},
		{"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: x\r\n\r\n", app.FastRequest{Host: "h", Method: "GET", Path: "/", Conditional: true, Forwardable: true}},
		{"GET / HTTP/1.0\r\n\r\n", app.FastRequest{Method: "GET", Path: "/"}},
		{"GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n", app.FastRequest{Host: "h", Method: "GET", Path: "/"}},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-hop\r\n\r\n", app.FastRequest{Host: "h", Method: "GET", Path: "/"}},
		{"GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, zstd;q=0.5\r\n\r\n", app.FastRequest{Host: "h", Method: "GET", Path: "/", AcceptEncoding: "gzip, zstd;q=0.5", Forwardable: true}},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", app.FastRequest{Host: "h", Method: "GET", Path: "/", Forwardable: true}},
	} {
		var r Request
		if _, res := Parse([]byte(tc.in), &r); res != OK {
			t.Errorf("Parse(%q) = %v", tc.in, res)
			continue
		}
		if r.FastRequest != tc.want {
			t.Errorf("Parse(%q).FastRequest = %+v, want %+v", tc.in, r.FastRequest, tc.want)
		}
	}
}

// TestParsePipelined: the length returned is the first head's, so the
// caller finds the next one after it.
func TestParsePipelined(t *testing.T) {
	b := []byte(wrkHead + browserHead)
	var r Request
	n, res := Parse(b, &r)
	if res != OK || n != len(wrkHead) {
		t.Fatalf("first = %d %v, want %d OK", n, res, len(wrkHead))
	}
	m, res := Parse(b[n:], &r)
	if res != OK || m != len(browserHead) || r.Path != "/static/a.txt" || r.Query != "v=3" {
		t.Fatalf("second = %d %v %q %q", m, res, r.Path, r.Query)
	}
}

func TestLowerIs(t *testing.T) {
	for _, tc := range []struct {
		b, s string
		want bool
	}{
		{"Host", "host", true}, {"HOST", "host", true}, {"host", "host", true},
		{"hostx", "host", false}, {"hos", "host", false}, {"h0st", "host", false}, {"", "", true},
	} {
		if got := LowerIs([]byte(tc.b), tc.s); got != tc.want {
			t.Errorf("LowerIs(%q, %q) = %v", tc.b, tc.s, got)
		}
	}
}
