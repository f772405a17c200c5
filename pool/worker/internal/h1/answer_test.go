package h1

import (
	"errors"
	"reflect"
	"testing"
)

// TestParseAnswer is the upstream answer parser's table.
func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		complete bool // n is the whole input
		err      bool
		want     Answer // compared without drop
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false,
			Answer{Code: 200, Minor: 1, Length: 5, Keep: true}},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, false,
			Answer{Code: 200, Minor: 1, Length: -1, Chunked: true, Keep: true}},
		{"LF lines", "HTTP/1.1 404 Not Found\nContent-Length: 0\nDate: x\n\n", true, false,
			Answer{Code: 404, Minor: 1, Length: 0, Keep: true, HasDate: true}},
		{"no reason", "HTTP/1.1 204\r\n\r\n", true, false, Answer{Code: 204, Minor: 1, Length: -1, Keep: true}},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", true, false,
			Answer{Code: 200, Minor: 1, Length: 1}},
		{"1.0 keep-alive with length", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", true, false,
			Answer{Code: 200, Minor: 0, Length: 1, Keep: true}},
		{"1.0 keep-alive without length", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", true, false,
			Answer{Code: 200, Minor: 0, Length: -1}},
		{"1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", true, false, Answer{Code: 200, Length: 1}},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", true, false,
			Answer{Code: 200, Minor: 1, Length: 3, Keep: true}},
		{"interim", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", true, false,
			Answer{Code: 103, Minor: 1, Length: -1, Keep: true}},

		{"partial line", "HTTP/1.1 200 O", false, false, Answer{}},
		{"partial head", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false, false, Answer{}},

		{"not http", "HTTP/2 200 OK\r\n\r\n", false, true, Answer{}},
		{"short", "HTTP/1.1 20\r\n\r\n", false, true, Answer{}},
		{"code letters", "HTTP/1.1 2x0 OK\r\n\r\n", false, true, Answer{}},
		{"code under 100", "HTTP/1.1 099 OK\r\n\r\n", false, true, Answer{}},
		{"no space after code", "HTTP/1.1 2000\r\n\r\n", false, true, Answer{}},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", false, true, Answer{}},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, true, Answer{}},
		{"gzip encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, true, Answer{}},
		{"bad name", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", false, true, Answer{}},
		{"no colon", "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", false, true, Answer{}},
		{"control in value", "HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", false, true, Answer{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := ParseAnswer([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, ErrMalformedAnswer) {
					t.Fatalf("err = %v, want ErrMalformedAnswer", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.complete {
				if n != 0 {
					t.Fatalf("n = %d for an incomplete head", n)
				}
				return
			}
			if n != len(tc.in) {
				t.Fatalf("n = %d, want %d", n, len(tc.in))
			}
			if h.drop = nil; !reflect.DeepEqual(h, tc.want) {
				t.Errorf("got %+v, want %+v", h, tc.want)
			}
		})
	}
}

// TestAppendAnswerHead: what the client gets of an upstream's head.
func TestAppendAnswerHead(t *testing.T) {
	date := []byte("Date: D\r\n")
	for _, tc := range []struct {
		name, raw string
		conn      Conn
		interim   bool
		want      string
	}{
		{"date added, names canonical", "HTTP/1.1 200 Whatever\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n", ConnNone, false,
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: D\r\n\r\n"},
		{"upstream's date kept", "HTTP/1.1 200 OK\r\nDate: U\r\nContent-Length: 0\r\n\r\n", ConnClose, false,
			"HTTP/1.1 200 OK\r\nDate: U\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"hop-by-hop dropped", "HTTP/1.1 200 OK\r\nConnection: x-hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: b\r\nTrailer: t\r\nUpgrade: u\r\nTE: t\r\nX-End: 2\r\nContent-Length: 0\r\n\r\n", ConnNone, false,
			"HTTP/1.1 200 OK\r\nX-End: 2\r\nContent-Length: 0\r\nDate: D\r\n\r\n"},
		{"length dropped under chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n", ConnNone, false,
			"HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"interim as it is", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", ConnNone, true,
			"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := ParseAnswer([]byte(tc.raw))
			if err != nil || n == 0 {
				t.Fatalf("ParseAnswer: %d %v", n, err)
			}
			if got := string(AppendAnswerHead(nil, &h, []byte(tc.raw[:n]), date, tc.conn, tc.interim)); got != tc.want {
				t.Errorf("got\n%q, want\n%q", got, tc.want)
			}
		})
	}
}
