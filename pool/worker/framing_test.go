package worker

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

// framingCase is one row of the framing table: raw bytes a client sends
// (a request that closes the connection follows them, unless alone), and
// the status codes RFC 9112 has a server answer, in order, until it
// closes.
type framingCase struct {
	name  string
	in    string
	want  []string
	alone bool   // no closing request follows (the input must end it)
	lacks string // text no answer's body may hold (what the upstream saw)
}

// Statuses by their code: net/http words some of its reasons its own way.
const (
	ok2 = "200"
	bad = "400"
)

// framingTable is what every class and the event loop must answer.
var framingTable = []framingCase{
	// Well framed: served, and the connection carries the next request.
	{name: "get", in: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{ok2, ok2}},
	{name: "content-length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", want: []string{ok2, ok2}},
	{name: "content-length 0", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", want: []string{ok2, ok2}},
	{name: "content-length with white space", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\t5 \r\n\r\nhello", want: []string{ok2, ok2}},
	{name: "chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: []string{ok2, ok2}},
	{name: "chunked in pieces", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3;ext=1\r\nllo\r\n0\r\n\r\n", want: []string{ok2, ok2}},
	{name: "chunked with a trailer", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", want: []string{ok2, ok2}},
	{name: "chunked in capitals", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", want: []string{ok2, ok2}},
	{name: "chunked with white space", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked \r\n\r\n0\r\n\r\n", want: []string{ok2, ok2}},
	{name: "body that looks like a request", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{ok2, ok2}},
	{name: "bare LF line ends", in: "GET / HTTP/1.1\nHost: x\n\n", want: []string{ok2, ok2}},
	{name: "pipelined gets", in: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{ok2, ok2, ok2}},
	{name: "HTTP/1.0 closes", in: "GET / HTTP/1.0\r\n\r\n", want: []string{ok2}},

	// Content-Length with Transfer-Encoding: refused and closed, so no
	// second request can hide in the body (RFC 9112 6.1, 6.3).
	{name: "CL then TE", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "TE then CL", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "CL and TE on a GET", in: "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "CL 0 and TE", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},

	// A Transfer-Encoding other than exactly chunked.
	{name: "TE gzip", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", want: []string{bad}},
	{name: "TE gzip, chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "TE chunked, chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "TE identity", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", want: []string{bad}},
	{name: "TE xchunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "TE chunked;", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "TE empty", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n", want: []string{bad}},
	{name: "TE in HTTP/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", want: []string{bad}},

	// Duplicate framing headers, even when they agree.
	{name: "two TE chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "two CL that agree", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", want: []string{bad}},
	{name: "two CL that differ", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", want: []string{bad}},
	{name: "CL as a list", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", want: []string{bad}},

	// Malformed Content-Length.
	{name: "CL with a sign", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", want: []string{bad}},
	{name: "CL negative", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", want: []string{bad}},
	{name: "CL in hex", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", want: []string{bad}},
	{name: "CL empty", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", want: []string{bad}},
	{name: "CL too large", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", want: []string{bad}},

	// obs-fold (RFC 9112 5.2) and white space before a colon (5.1).
	{name: "folded TE", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "folded CL", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\t5\r\n\r\nhello", want: []string{bad}},
	{name: "folded other header", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", want: []string{bad}},
	{name: "space before colon, CL", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", want: []string{bad}},
	{name: "space before colon, TE", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "tab before colon", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n", want: []string{bad}},

	// Refused after a good request: its answer comes first.
	{name: "good, then CL and TE", in: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: []string{ok2, bad}},
	{name: "body, then folded", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", want: []string{ok2, bad}},
	{name: "chunks, then two CL", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", want: []string{ok2, bad}},

	// Underscores: the header is dropped, the request served.
	{name: "underscore header dropped", in: "GET /proxy/echo HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nUser_Agent: evil\r\n\r\n", want: []string{ok2, ok2}, lacks: "6.6.6.6"},
	{name: "underscore TE dropped", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\nhello", want: []string{ok2, ok2}},
	{name: "underscore CL dropped", in: "POST /proxy/echo HTTP/1.1\r\nHost: x\r\nContent_Length: 12345678\r\nContent-Length: 2\r\n\r\nhi", want: []string{ok2, ok2}, lacks: "12345678"},

	// Request lines with no head to wait for, and other refusals.
	{name: "HTTP/0.9", in: "GET /\r\n", want: []string{bad}, alone: true},
	{name: "no request line", in: "hello\r\n", want: []string{bad}, alone: true},
	{name: "no Host", in: "GET / HTTP/1.1\r\n\r\n", want: []string{bad}},
	{name: "NUL in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", want: []string{bad}},
	{name: "unknown version", in: "GET / HTTP/1.2\r\nHost: x\r\n\r\n", want: []string{ok2, ok2}},

	// More well-framed requests that a strict server still serves.
	{name: "CL with leading zeros", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello", want: []string{ok2, ok2}},
	{name: "absolute-form target", in: "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{ok2, ok2}},
	{name: "HTTP/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", want: []string{ok2, ok2}},
	{name: "Connection: close", in: "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", want: []string{ok2}},
	{name: "obs-text in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n", want: []string{ok2, ok2}},
	{name: "many headers", in: "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Many: 1\r\n", 100) + "\r\n", want: []string{ok2, ok2}},
	{name: "empty value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n", want: []string{ok2, ok2}},
	{name: "no space after colon", in: "GET / HTTP/1.1\r\nHost:x\r\n\r\n", want: []string{ok2, ok2}},
	{name: "chunked, then CL request", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", want: []string{ok2, ok2, ok2}},
	{name: "chunk sizes in capitals", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", want: []string{ok2, ok2}},

	// More refusals (RFC 9112 3, 5; RFC 9110 5.1, 7.2).
	{name: "two Host headers", in: "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", want: []string{bad}},
	{name: "Host with a space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", want: []string{bad}},
	{name: "header without a colon", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n", want: []string{bad}},
	{name: "empty header name", in: "GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", want: []string{bad}},
	{name: "space before the first header", in: "GET / HTTP/1.1\r\n Host: x\r\n\r\n", want: []string{bad}},
	{name: "bad char in a name", in: "GET / HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n", want: []string{bad}},
	{name: "two spaces in the request line", in: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "space in the target", in: "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "version in lower case", in: "GET / http/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "bad char in the method", in: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "target without a slash", in: "GET a HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "CL with trailing letters", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello", want: []string{bad}},
	{name: "CL in exponent form", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e1\r\n\r\n0123456789", want: []string{bad}},
	{name: "TE chunked with a comma", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "TE and CL in other cases", in: "POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 4\r\nTRANSFER-ENCODING: chunked\r\n\r\n0\r\n\r\n", want: []string{bad}},
	{name: "NUL in the target", in: "GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "bare CR in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", want: []string{bad}},
	{name: "bare CR line end", in: "GET / HTTP/1.1\rHost: x\r\n\r\n", want: []string{bad}},
	{name: "DEL in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", want: []string{bad}},
	{name: "HTTP/2.0 request line", in: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", want: []string{"505"}},
	{name: "HTTP/1 without a minor", in: "GET / HTTP/1\r\nHost: x\r\n\r\n", want: []string{bad}},
	{name: "TE with a tab only", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\t\r\n\r\n", want: []string{bad}},
	{name: "CL with a space inside", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n0123456789", want: []string{bad}},
	{name: "underscore CL with TE", in: "POST / HTTP/1.1\r\nHost: x\r\nContent_Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: []string{ok2, ok2}},
	{name: "two TE, one with underscore", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: []string{ok2, ok2}},
	{name: "folded CL after a good request", in: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 2\r\n\r\nhi", want: []string{ok2, bad}},
}

// framingSites are the ways a plain-HTTP listener serves: every class on
// net/http, and the event loop (which hands what it does not answer to
// net/http with the bytes read so far).
var framingSites = []struct {
	name, class string
	loop        bool
}{
	{"sync", hclconfig.ClassSync, false},
	{"thread", hclconfig.ClassThread, false},
	{"async", hclconfig.ClassAsync, false},
	{"loop", hclconfig.ClassAsync, true},
}

// TestFramingTable is the differential test of request framing: it sends
// every row of framingTable to every class and to the event loop (and
// TestFramingTableTLS to every class over TLS), and compares the answers
// with the table of what RFC 9112 has a server answer. The sync
// class closes after one answer, so it must give the first.
func TestFramingTable(t *testing.T) {
	var fails atomic.Int32
	for _, s := range framingSites {
		t.Run(s.name, func(t *testing.T) {
			l := loopSite(t)
			l.Class, l.EventLoop = s.class, s.loop
			tw := startSite(t, l, nil, nil)
			for _, tc := range framingTable {
				in := tc.in
				if !tc.alone {
					in += closer
				}
				want := tc.want
				if s.class == hclconfig.ClassSync {
					want = want[:1]
				}
				as := replay(t, tw.addr, in, nil)
				var got []string
				for _, a := range as {
					got = append(got, a.Status[:min(3, len(a.Status))])
					if tc.lacks != "" && strings.Contains(a.Body, tc.lacks) {
						t.Errorf("%s: an answer holds %q:\n%s", tc.name, tc.lacks, a.Body)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					fails.Add(1)
					t.Errorf("%s: %q\n answers %q\n want    %q", tc.name, tc.in, got, want)
				}
			}
		})
	}
	t.Logf("%d rows on %d sites, %d answers differ from the table", len(framingTable), len(framingSites), fails.Load())
}

// TestFramingHeadLimit: a head over max_header_bytes is refused with 431
// and a clean close, not 4 KiB later and not with a reset.
func TestFramingHeadLimit(t *testing.T) {
	for _, s := range framingSites {
		t.Run(s.name, func(t *testing.T) {
			l := loopSite(t)
			l.Class, l.EventLoop = s.class, s.loop
			l.MaxHeaderBytes = 16 << 10
			tw := startSite(t, l, nil, nil)
			over := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
			as := replay(t, tw.addr, over+closer, nil)
			if len(as) != 1 || !strings.HasPrefix(as[0].Status, "431") {
				t.Fatalf("a head 100 bytes over max_header_bytes: %v, want one 431 and a clean close", as)
			}
			under := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 15<<10) + "\r\n\r\n"
			if as := replay(t, tw.addr, under+closer, nil); len(as) < 1 || as[0].Status != "200 OK" {
				t.Fatalf("a head under max_header_bytes: %v", as)
			}
		})
	}
}

// TestUnderscoresInHeadersKept: with underscores_in_headers the header
// reaches the upstream.
func TestUnderscoresInHeadersKept(t *testing.T) {
	for _, loop := range []bool{true, false} {
		l := loopSite(t)
		l.EventLoop = loop
		l.UnderscoresInHeaders = true
		tw := startSite(t, l, nil, nil)
		as := replay(t, tw.addr, "GET /proxy/echo HTTP/1.1\r\nHost: x\r\nContent_Length: 12345678\r\nContent-Length: 2\r\n\r\nhi"+closer, nil)
		if len(as) != 2 || as[0].Status != "200 OK" || !strings.Contains(as[0].Body, "12345678") {
			t.Fatalf("event_loop=%v: %v", loop, as)
		}
	}
}

// byteSource hands out s one byte per read, then io.EOF.
func byteSource(s string) func([]byte) (int, error) {
	return func(p []byte) (int, error) {
		if len(s) == 0 {
			return 0, io.EOF
		}
		p[0], s = s[0], s[1:]
		return 1, nil
	}
}

// TestFramerPassesWellFramedStreams: requests with bodies of both
// framings, read one byte at a time, come out as they went in.
func TestFramerPassesWellFramedStreams(t *testing.T) {
	in := "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" +
		"\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"
	var refused atomic.Int32
	f := &framer{maxHead: 1 << 10, refused: &refused}
	src := byteSource(in)
	out, err := io.ReadAll(readerFunc(func(p []byte) (int, error) { return f.read(src, p) }))
	if err != nil || string(out) != in || refused.Load() != 0 {
		t.Fatalf("out %q, %v, refused %d", out, err, refused.Load())
	}
}

// TestFramerRefuses: a refused head after a good request becomes the
// stand-in request, and the stream ends there.
func TestFramerRefuses(t *testing.T) {
	good := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	in := good + "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"
	var refused atomic.Int32
	f := &framer{maxHead: 1 << 10, refused: &refused}
	src := strings.NewReader(in)
	out, err := io.ReadAll(readerFunc(func(p []byte) (int, error) { return f.read(src.Read, p) }))
	if err != nil || string(out) != good+rejectHead || refused.Load() != 400 {
		t.Fatalf("out %q, %v, refused %d", out, err, refused.Load())
	}
}

func TestCheckHeadDropsUnderscores(t *testing.T) {
	h, status := checkHead([]byte("GET / HTTP/1.1\r\nHost: x\r\nX_A: 1\r\nX-B: 2\r\nY_Z: 3\r\n\r\n"), false)
	if status != 0 || string(h.bytes) != "GET / HTTP/1.1\r\nHost: x\r\nX-B: 2\r\n\r\n" {
		t.Fatalf("%q %d", h.bytes, status)
	}
	h, _ = checkHead([]byte("GET / HTTP/1.1\r\nX_A: 1\r\n\r\n"), true)
	if string(h.bytes) != "GET / HTTP/1.1\r\nX_A: 1\r\n\r\n" {
		t.Fatalf("kept: %q", h.bytes)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestSyncPipelinedClosesCleanly: the sync class answers the first of
// 40 pipelined requests (more than net/http's read buffer holds) and
// closes without a reset (before, the unread requests made the close a
// reset, which can destroy the answer).
func TestSyncPipelinedClosesCleanly(t *testing.T) {
	l := loopSite(t)
	l.Class, l.EventLoop = hclconfig.ClassSync, false
	tw := startSite(t, l, nil, nil)
	for i := range 20 {
		c, br := dialSite(t, tw.addr)
		io.WriteString(c, strings.Repeat("GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("p", 200)+"\r\n\r\n", 40))
		if _, body := readAnswer(t, br, "GET"); body != "hello\n" {
			t.Fatalf("round %d: %q", i, body)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("round %d: after the answer %v, want a clean EOF", i, err)
		}
		c.Close()
	}
}
