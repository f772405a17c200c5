package h2

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestRequestAndResponse(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	p.headers(1, true, append(append([]string{}, getRoot...), "accept", "*/*", "cookie", "a=1", "cookie", "b=2")...)
	ev := p.one(EvRequest)
	r := ev.Req
	if r.Method != "GET" || r.Authority != "example.test" || r.Path != "/" || r.Scheme != "https" || !ev.End || len(r.Header) != 3 {
		t.Fatalf("request %+v end %v", r, ev.End)
	}
	s := ev.Stream
	if err := p.c.WriteHeaders(s, 200, []hpack.HeaderField{{Name: "content-type", Value: "text/plain"}}, false); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("b"), 40000) // three frames at 16 KiB
	if n, err := p.c.WriteData(s, body, true); n != len(body) || err != nil {
		t.Fatalf("WriteData = %d, %v", n, err)
	}
	gs := p.out()
	if len(gs) != 4 || gs[0].typ != http2.FrameHeaders || gs[0].fields[0].Value != "200" {
		t.Fatalf("response frames %+v", gs)
	}
	var got int
	for i, g := range gs[1:] {
		got += len(g.data)
		if end := g.flags.Has(http2.FlagDataEndStream); end != (i == 2) {
			t.Fatalf("DATA %d END_STREAM %v", i, end)
		}
	}
	if got != len(body) {
		t.Fatalf("%d body bytes, want %d", got, len(body))
	}
	if !s.Closed() {
		t.Fatal("stream not closed after END_STREAM both ways")
	}
	p.c.Release(s)
	if p.c.Active() != 0 {
		t.Fatalf("%d streams after release", p.c.Active())
	}
	p.c.GoAway(ErrNo)
	if gs := p.out(); len(gs) != 1 || gs[0].typ != http2.FrameGoAway || gs[0].last != 1 || gs[0].code != http2.ErrCodeNo {
		t.Fatalf("GoAway wrote %+v", gs)
	}
	if !p.c.Done() {
		t.Fatal("not done after GOAWAY with nothing open")
	}
}

func TestSendFlowControl(t *testing.T) {
	p := newPeer(t, Config{})
	p.start(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	p.headers(1, true, getRoot...)
	s := p.one(EvRequest).Stream
	p.c.WriteHeaders(s, 200, nil, false)
	if n, _ := p.c.WriteData(s, make([]byte, 100), true); n != 10 {
		t.Fatalf("sent %d past a window of 10", n)
	}
	if gs := p.out(); len(gs) != 2 || len(gs[1].data) != 10 || gs[1].flags.Has(http2.FlagDataEndStream) {
		t.Fatalf("frames %+v: want HEADERS and 10 bytes without END_STREAM", gs)
	}
	if p.c.Window(s) != 0 {
		t.Fatalf("window %d after spending it", p.c.Window(s))
	}
	p.fr.WriteWindowUpdate(1, 50)
	if ev := p.one(EvWindow); ev.Stream != s || p.c.Window(s) != 50 {
		t.Fatalf("WINDOW_UPDATE gave %+v, window %d", ev, p.c.Window(s))
	}
	// A SETTINGS change moves open streams' windows by the difference.
	p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 5})
	if evs, err := p.feed(); err != nil || len(evs) != 0 {
		t.Fatalf("a smaller window gave %+v, %v", evs, err)
	}
	if p.c.Window(s) != 45 {
		t.Fatalf("window %d after SETTINGS 10 -> 5, want 45", p.c.Window(s))
	}
	// The stream's window overflowing is a stream error.
	p.fr.WriteWindowUpdate(1, 1<<31-1)
	p.streamErr(1, ErrFlowControl)
}

func TestReleaseUnfinishedResets(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	p.headers(1, true, getRoot...)
	s := p.one(EvRequest).Stream
	p.c.Release(s)
	if gs := p.out(); len(gs) != 1 || gs[0].typ != http2.FrameRSTStream || gs[0].code != http2.ErrCodeInternal {
		t.Fatalf("release of an unanswered stream wrote %+v", gs)
	}
	if _, err := p.c.WriteData(s, []byte("x"), true); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after reset: %v", err)
	}
}

func TestLargeResponseHeadUsesContinuation(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	p.headers(1, true, getRoot...)
	s := p.one(EvRequest).Stream
	var fs []hpack.HeaderField
	for i := 0; i < 40; i++ {
		fs = append(fs, hpack.HeaderField{Name: "x-h", Value: strings.Repeat(string(rune('a'+i%26)), 1000)})
	}
	p.c.WriteHeaders(s, 200, fs, true)
	out := p.c.TakeOutput()
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	mh, ok := f.(*http2.MetaHeadersFrame)
	if !ok || len(mh.Fields) != 41 {
		t.Fatalf("read %T with %d fields", f, len(mh.Fields))
	}
}

func TestReleaseAfterAnswerWaitsForTheBody(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	p.headers(1, false, getRoot...)
	s := p.one(EvRequest).Stream
	p.c.WriteHeaders(s, 204, nil, true)
	p.c.Release(s)
	if gs := p.out(); len(gs) != 1 || gs[0].typ != http2.FrameHeaders {
		t.Fatalf("release after the answer wrote %+v, want only the answer", gs)
	}
	if p.c.Active() != 1 {
		t.Fatal("the stream left before its body ended")
	}
	p.fr.WriteData(1, true, []byte("rest"))
	if ev := p.one(EvData); !ev.End {
		t.Fatalf("event %+v", ev)
	}
	if p.c.Active() != 0 {
		t.Fatal("the stream stays after its body ended")
	}
}
