package h1

import (
	"testing"

	"github.com/hfork/hfork/pool/worker/app"
)

// TestAppendUpstreamRequest: what an upstream gets for a client's head.
func TestAppendUpstreamRequest(t *testing.T) {
	for _, tc := range []struct {
		name, in, remote, want string
		px                     *app.FastProxy
		chain                  *string
		id                     string
	}{
		{"plain", "GET /a?b HTTP/1.1\r\nHost: site\r\naccept: */*\r\n\r\n", "10.0.0.1:5000",
			"GET /a?b HTTP/1.1\r\nHost: up:80\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: site\r\nX-Forwarded-Proto: http\r\n\r\n", nil, nil, ""},
		{"hop-by-hop and own headers dropped", "HEAD / HTTP/1.1\r\nHost: site\r\nUser-Agent: ua\r\nConnection: keep-alive\r\n" +
			"Keep-Alive: 5\r\nProxy-Authorization: x\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nContent-Length: 0\r\nX-Keep: 1\r\n\r\n", "",
			"HEAD / HTTP/1.1\r\nHost: up:80\r\nUser-Agent: ua\r\nX-Keep: 1\r\nX-Forwarded-Host: site\r\nX-Forwarded-Proto: http\r\n\r\n", nil, nil, ""},
		{"X-Forwarded-For appended to", "GET / HTTP/1.1\r\nHost: site\r\nx-forwarded-for: 1.1.1.1, 2.2.2.2\r\n\r\n", "[::1]:9",
			"GET / HTTP/1.1\r\nHost: up:80\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, ::1\r\nX-Forwarded-Host: site\r\nX-Forwarded-Proto: http\r\n\r\n", nil, nil, ""},
		{"request_headers: remove, set, add", "GET / HTTP/1.1\r\nHost: site\r\nCookie: a=1\r\nX-Env: dev\r\nAccept: */*\r\nUser-Agent: ua\r\n\r\n", "10.0.0.1:9",
			"GET / HTTP/1.1\r\nHost: up:80\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: site\r\nX-Env: prod\r\nVia: hfork\r\n\r\n",
			&app.FastProxy{Drop: []string{"cookie", "user-agent", "x-forwarded-proto", "x-env"}, Set: [][2]string{{"X-Env", "prod"}}, Add: [][2]string{{"Via", "hfork"}}}, nil, ""},
		{"trusted chain and request ID replace the client's", "GET / HTTP/1.1\r\nHost: site\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-ID: forged\r\n\r\n", "10.0.0.1:9",
			"GET / HTTP/1.1\r\nHost: up:80\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: site\r\nX-Forwarded-Proto: http\r\nX-Request-Id: abc\r\n\r\n",
			nil, ptr("203.0.113.9"), "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			f := &Forward{Host: "up:80", Remote: tc.remote, Proxy: tc.px, RequestID: tc.id}
			if tc.chain != nil {
				f.Chain, f.UseChain = *tc.chain, true
			}
			n, res := Parse([]byte(tc.in), &r)
			if res != OK {
				t.Fatalf("Parse = %v", res)
			}
			b, hostAt := AppendUpstreamRequest(nil, &r, []byte(tc.in[:n]), f)
			if got := string(b); got != tc.want {
				t.Errorf("got\n%q, want\n%q", got, tc.want)
			}
			if host := string(b[hostAt : hostAt+5]); host != "up:80" {
				t.Errorf("host at %d is %q", hostAt, host)
			}
		})
	}
}

func TestAppendCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"content-type": "Content-Type", "X-FORWARDED-FOR": "X-Forwarded-For", "etag": "Etag", "a--b": "A--B",
	} {
		if got := string(AppendCanonical(nil, []byte(in))); got != want {
			t.Errorf("AppendCanonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func ptr(s string) *string { return &s }
