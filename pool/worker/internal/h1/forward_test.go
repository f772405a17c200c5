package h1

import "testing"

// TestAppendUpstreamRequest: what an upstream gets for a client's head.
func TestAppendUpstreamRequest(t *testing.T) {
	for _, tc := range []struct {
		name, in, remote, want string
	}{
		{"plain", "GET /a?b HTTP/1.1\r\nHost: site\r\naccept: */*\r\n\r\n", "10.0.0.1:5000",
			"GET /a?b HTTP/1.1\r\nHost: up:80\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: site\r\nX-Forwarded-Proto: http\r\n\r\n"},
		{"hop-by-hop and own headers dropped", "HEAD / HTTP/1.1\r\nHost: site\r\nUser-Agent: ua\r\nConnection: keep-alive\r\n" +
			"Keep-Alive: 5\r\nProxy-Authorization: x\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nContent-Length: 0\r\nX-Keep: 1\r\n\r\n", "",
			"HEAD / HTTP/1.1\r\nHost: up:80\r\nUser-Agent: ua\r\nX-Keep: 1\r\nX-Forwarded-Host: site\r\nX-Forwarded-Proto: http\r\n\r\n"},
		{"X-Forwarded-For appended to", "GET / HTTP/1.1\r\nHost: site\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n\r\n", "[::1]:9",
			"GET / HTTP/1.1\r\nHost: up:80\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, ::1\r\nX-Forwarded-Host: site\r\nX-Forwarded-Proto: http\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, res := Parse([]byte(tc.in), &r)
			if res != OK {
				t.Fatalf("Parse = %v", res)
			}
			if got := string(AppendUpstreamRequest(nil, &r, []byte(tc.in[:n]), "up:80", tc.remote)); got != tc.want {
				t.Errorf("got\n%q, want\n%q", got, tc.want)
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
