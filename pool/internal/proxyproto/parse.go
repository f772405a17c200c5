package proxyproto

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
)

// Result is what Parse made of the bytes.
type Result int

const (
	More Result = iota // not complete yet
	OK                 // a header, of the returned length
	Bad                // not a PROXY header: refuse the connection
)

func (r Result) String() string {
	switch r {
	case More:
		return "more"
	case OK:
		return "ok"
	case Bad:
		return "bad"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// v1Max is the longest v1 line (the spec's 107 bytes, CRLF included).
const v1Max = 107

// sigV2 begins every v2 header.
var sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// MaxHeader is the longest header Parse accepts (v2 with 512 bytes of
// TLVs, which it skips).
const MaxHeader = 16 + 512

// Parse parses the header at the start of b. It returns its length and
// the client's address with OK; an invalid src means the header carried
// none (LOCAL, UNKNOWN, or an address family other than TCP over IPv4 or
// IPv6), and the peer's own address stands.
func Parse(b []byte) (n int, src netip.AddrPort, res Result) {
	switch {
	case len(b) == 0:
		return 0, src, More
	case b[0] == 'P':
		return parseV1(b)
	case b[0] == '\r':
		return parseV2(b)
	}
	return 0, src, Bad
}

func parseV1(b []byte) (int, netip.AddrPort, Result) {
	var src netip.AddrPort
	prefix := []byte("PROXY ")
	if !bytes.HasPrefix(b, prefix[:min(len(b), len(prefix))]) {
		return 0, src, Bad
	}
	end := bytes.Index(b[:min(len(b), v1Max)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= v1Max {
			return 0, src, Bad
		}
		return 0, src, More
	}
	f := bytes.Split(b[len(prefix):end], []byte(" "))
	if string(f[0]) == "UNKNOWN" { // the rest of the line is to be ignored
		return end + 2, src, OK
	}
	if len(f) != 5 || (string(f[0]) != "TCP4" && string(f[0]) != "TCP6") {
		return 0, src, Bad
	}
	ip, err := netip.ParseAddr(string(f[1]))
	if err != nil || ip.Is4() != (string(f[0]) == "TCP4") {
		return 0, src, Bad
	}
	if _, err := netip.ParseAddr(string(f[2])); err != nil {
		return 0, src, Bad
	}
	port, err := strconv.ParseUint(string(f[3]), 10, 16)
	if err != nil || (len(f[3]) > 1 && f[3][0] == '0') {
		return 0, src, Bad
	}
	if _, err := strconv.ParseUint(string(f[4]), 10, 16); err != nil {
		return 0, src, Bad
	}
	return end + 2, netip.AddrPortFrom(ip, uint16(port)), OK
}

func parseV2(b []byte) (int, netip.AddrPort, Result) {
	var src netip.AddrPort
	if !bytes.HasPrefix(b, sigV2[:min(len(b), len(sigV2))]) {
		return 0, src, Bad
	}
	if len(b) < 16 {
		return 0, src, More
	}
	verCmd, fam := b[12], b[13]
	size := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 || 16+size > MaxHeader {
		return 0, src, Bad
	}
	if len(b) < 16+size {
		return 0, src, More
	}
	n := 16 + size
	addr := b[16:n]
	switch verCmd & 0xf {
	case 0: // LOCAL: the balancer speaking for itself
		return n, src, OK
	case 1: // PROXY
	default:
		return 0, src, Bad
	}
	switch fam {
	case 0x11: // TCP over IPv4
		if len(addr) < 12 {
			return 0, src, Bad
		}
		ip := netip.AddrFrom4([4]byte(addr[0:4]))
		return n, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(addr[8:10])), OK
	case 0x21: // TCP over IPv6
		if len(addr) < 36 {
			return 0, src, Bad
		}
		ip := netip.AddrFrom16([16]byte(addr[0:16])).Unmap()
		return n, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(addr[32:34])), OK
	}
	// UDP, unix, or unspecified: no TCP client address to take.
	return n, src, OK
}
