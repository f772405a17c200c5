package proxyproto

import (
	"encoding/binary"
	"testing"
)

// v2 builds a raw v2 header: command, family, address bytes.
func v2(cmd, fam byte, addr []byte) []byte {
	b := append([]byte(nil), sigV2...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(addr)))
	return append(b, addr...)
}

func TestParse(t *testing.T) {
	tcp4 := []byte{192, 0, 2, 7, 10, 0, 0, 1, 0xd4, 0x31, 0x01, 0xbb} // 192.0.2.7:54321 -> 10.0.0.1:443
	tcp6 := make([]byte, 36)
	copy(tcp6, []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	tcp6[32], tcp6[33] = 0x1f, 0x90 // port 8080
	withTLV := append(append([]byte(nil), tcp4...), 0x04, 0, 2, 'h', 'i')
	for _, tc := range []struct {
		name string
		in   []byte
		n    int
		src  string
		res  Result
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 54321 443\r\nGET /"), 41, "192.0.2.7:54321", OK},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 8080 80\r\n"), 44, "[2001:db8::1]:8080", OK},
		{"v1 unknown", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), 35, "invalid AddrPort", OK},
		{"v1 partial", []byte("PROXY TCP4 192.0.2.7"), 0, "invalid AddrPort", More},
		{"v1 prefix only", []byte("PRO"), 0, "invalid AddrPort", More},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n"), 0, "invalid AddrPort", Bad},
		{"v1 bad port", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 99999 443\r\n"), 0, "invalid AddrPort", Bad},
		{"v1 no CRLF in 107 bytes", append([]byte("PROXY TCP4 "), make([]byte, 120)...), 0, "invalid AddrPort", Bad},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\n"), 0, "invalid AddrPort", Bad},
		{"v2 tcp4", append(v2(1, 0x11, tcp4), "GET"...), 28, "192.0.2.7:54321", OK},
		{"v2 tcp6", v2(1, 0x21, tcp6), 52, "[2001:db8::1]:8080", OK},
		{"v2 TLVs skipped", v2(1, 0x11, withTLV), 33, "192.0.2.7:54321", OK},
		{"v2 local", v2(0, 0x00, nil), 16, "invalid AddrPort", OK},
		{"v2 unix family", v2(1, 0x31, make([]byte, 216)), 232, "invalid AddrPort", OK},
		{"v2 partial", v2(1, 0x11, tcp4)[:20], 0, "invalid AddrPort", More},
		{"v2 short signature", sigV2[:5], 0, "invalid AddrPort", More},
		{"v2 bad signature", []byte("\r\n\r\nX\r\nQUIT\n...."), 0, "invalid AddrPort", Bad},
		{"v2 bad command", v2(7, 0x11, tcp4), 0, "invalid AddrPort", Bad},
		{"v2 short address", v2(1, 0x11, tcp4[:6]), 0, "invalid AddrPort", Bad},
	} {
		n, src, res := Parse(tc.in)
		if n != tc.n || src.String() != tc.src || res != tc.res {
			t.Errorf("%s: %d %s %v, want %d %s %v", tc.name, n, src, res, tc.n, tc.src, tc.res)
		}
	}
}
