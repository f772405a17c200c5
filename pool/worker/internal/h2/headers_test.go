package h2

import (
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

func TestMalformedRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []string
	}{
		{"upper-case name", append(append([]string{}, getRoot...), "X-Up", "1")},
		{"connection header", append(append([]string{}, getRoot...), "connection", "keep-alive")},
		{"transfer-encoding", append(append([]string{}, getRoot...), "transfer-encoding", "chunked")},
		{"te not trailers", append(append([]string{}, getRoot...), "te", "gzip")},
		{"pseudo after regular", []string{":method", "GET", ":scheme", "https", "accept", "*/*", ":path", "/"}},
		{"unknown pseudo", append(append([]string{}, getRoot...), ":status", "200")},
		{"no :path", []string{":method", "GET", ":scheme", "https"}},
		{"no :method", []string{":scheme", "https", ":path", "/"}},
		{"repeated :path", append(append([]string{}, getRoot...), ":path", "/x")},
		{"relative :path", []string{":method", "GET", ":scheme", "https", ":path", "x"}},
		{"bad content-length", append(append([]string{}, getRoot...), "content-length", "x")},
		{"value with a newline", append(append([]string{}, getRoot...), "x-a", "a\nb")},
		{"CONNECT with :path", []string{":method", "CONNECT", ":authority", "a:1", ":path", "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, Config{})
			p.start()
			p.headers(1, true, tc.kv...)
			if evs := p.streamErr(1, ErrProtocol); len(evs) != 0 {
				t.Fatalf("a malformed request gave events %+v", evs)
			}
			// The connection lives on, HPACK in step.
			p.headers(3, true, getRoot...)
			if ev := p.one(EvRequest); ev.Req.Path != "/" {
				t.Fatalf("next request %+v", ev.Req)
			}
		})
	}
}

func TestBodyRules(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	// content-length 3 but 4 bytes.
	p.headers(1, false, append(append([]string{}, getRoot...), "content-length", "3")...)
	p.one(EvRequest)
	p.fr.WriteData(1, true, []byte("abcd"))
	p.streamErr(1, ErrProtocol)
	// Trailers end a body.
	p.headers(3, false, getRoot...)
	p.one(EvRequest)
	p.fr.WriteData(3, false, []byte("ab"))
	p.one(EvData)
	p.headers(3, true, "x-checksum", "1")
	if ev := p.one(EvData); !ev.End || len(ev.Data) != 0 {
		t.Fatalf("trailers gave %+v", ev)
	}
	// DATA after END_STREAM.
	p.fr.WriteData(3, true, []byte("x"))
	p.streamErr(3, ErrStreamClosed)
	// Padded DATA and HEADERS.
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: p.block(getRoot...), EndHeaders: true, PadLength: 7})
	p.one(EvRequest)
	p.fr.WriteDataPadded(5, true, []byte("xyz"), make([]byte, 4))
	if ev := p.one(EvData); string(ev.Data) != "xyz" || !ev.End {
		t.Fatalf("padded DATA gave %+v", ev)
	}
	// Content-length with END_STREAM on the head and no body.
	p.headers(7, true, append(append([]string{}, getRoot...), "content-length", "2")...)
	p.streamErr(7, ErrProtocol)
}

func TestHeaderListTooLarge(t *testing.T) {
	p := newPeer(t, Config{MaxHeaderListSize: 200})
	p.start()
	p.headers(1, true, append(append([]string{}, getRoot...), "x-big", strings.Repeat("a", 200))...)
	if evs, err := p.feed(); err != nil || len(evs) != 0 {
		t.Fatalf("feed %+v %v", evs, err)
	}
	gs := p.out()
	if len(gs) != 1 || gs[0].typ != http2.FrameHeaders || gs[0].fields[0].Value != "431" || !gs[0].flags.Has(http2.FlagHeadersEndStream) {
		t.Fatalf("answer %+v, want 431", gs)
	}
	if p.c.Active() != 0 {
		t.Fatal("the 431 stream stays")
	}
}
