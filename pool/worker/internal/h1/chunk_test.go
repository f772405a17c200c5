package h1

import (
	"errors"
	"testing"
)

// TestChunkScanner feeds each body whole, and then one byte at a time:
// the scanner's answer must not depend on how the bytes arrive.
func TestChunkScanner(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int   // body bytes; -1: all of in, not ended
		payload  int64 // data bytes among them
		err      bool
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", 15, 5, false},
		{"two chunks, upper-case hex", "A\r\n0123456789\r\n1\r\nx\r\n0\r\n\r\n", 26, 11, false},
		{"extension", "5;name=v\r\nhello\r\n0\r\n\r\n", 22, 5, false},
		{"trailer", "1\r\na\r\n0\r\nX-T: 1\r\n\r\n", 19, 1, false},
		{"bytes after the end", "0\r\n\r\nHTTP/1.1", 5, 0, false},
		{"not ended", "5\r\nhel", -1, 3, false},
		{"no size", "\r\n", 0, 0, true},
		{"bad size", "g\r\n", 0, 0, true},
		{"no CRLF after data", "1\r\nab\r\n", 0, 0, true},
		{"size too large", "1000000000000000\r\n", 0, 0, true},
		{"bare LF after size", "1\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.n
			if want < 0 {
				want = len(tc.in)
			}
			var s ChunkScanner
			n, payload, end, err := s.Scan([]byte(tc.in))
			if tc.err {
				var e Error
				if !errors.As(err, &e) {
					t.Fatalf("whole: err = %v, want an Error", err)
				}
			} else if err != nil || n != want || payload != tc.payload || end != (tc.n >= 0) {
				t.Fatalf("whole: %d %d %v %v, want %d %d %v", n, payload, end, err, want, tc.payload, tc.n >= 0)
			}

			s = ChunkScanner{}
			total, sum, ended, failed := 0, int64(0), false, false
			for i := 0; i < len(tc.in) && !ended && !failed; i++ {
				n, p, e, err := s.Scan([]byte{tc.in[i]})
				total, sum, ended, failed = total+n, sum+p, e, err != nil
			}
			if failed != tc.err {
				t.Fatalf("bytewise: failed = %v, want %v", failed, tc.err)
			}
			if !tc.err && (total != want || sum != tc.payload || ended != (tc.n >= 0)) {
				t.Errorf("bytewise: %d %d %v, want %d %d %v", total, sum, ended, want, tc.payload, tc.n >= 0)
			}
		})
	}
}
