package h1

import "testing"

// TestFraming is net/http's Connection header rule for the loop's answers.
func TestFraming(t *testing.T) {
	for _, tc := range []struct {
		minor             int
		closing, draining bool
		want              Conn
	}{
		{1, false, false, ConnNone},
		{1, true, false, ConnClose},
		{1, true, true, ConnClose},
		{1, false, true, ConnClose},
		{0, false, false, ConnKeepAlive},
		{0, true, false, ConnNone},
		{0, true, true, ConnClose},
	} {
		if got := Framing(tc.minor, tc.closing, tc.draining); got != tc.want {
			t.Errorf("Framing(%d, %v, %v) = %v, want %v", tc.minor, tc.closing, tc.draining, got, tc.want)
		}
	}
}

func TestAppendHeadEndHead(t *testing.T) {
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
	date := []byte("Date: D\r\n")
	for _, tc := range []struct {
		minor   int
		date    []byte
		chunked bool
		conn    Conn
		want    string
	}{
		{1, date, false, ConnNone, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: D\r\n\r\n"},
		{0, date, false, ConnKeepAlive, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nDate: D\r\nConnection: keep-alive\r\n\r\n"},
		{1, nil, true, ConnClose, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"},
	} {
		got := string(EndHead(AppendHead(nil, head, tc.minor), tc.date, tc.chunked, tc.conn))
		if got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestAppendDate(t *testing.T) {
	if got, want := string(AppendDate(nil, 784111777)), "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestConnString(t *testing.T) {
	for c, want := range map[Conn]string{ConnNone: "none", ConnClose: "close", ConnKeepAlive: "keep-alive"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), want)
		}
	}
}
