package h2

import (
	"errors"
	"testing"

	"golang.org/x/net/http2"
)

func TestPingAck(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	p.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	p.fr.WritePing(true, [8]byte{9}) // an ACK is not answered
	if _, err := p.feed(); err != nil {
		t.Fatal(err)
	}
	gs := p.out()
	if len(gs) != 1 || gs[0].typ != http2.FramePing || !gs[0].flags.Has(http2.FlagPingAck) || gs[0].data[7] != 8 {
		t.Fatalf("PING answer %+v", gs)
	}
}

// The server's SETTINGS waits for its ACK until the client sends one; a
// second ACK is let pass; the driver's GoAway(ErrSettingsTimeout) is a
// GOAWAY with that code.
func TestSettingsAck(t *testing.T) {
	p := newPeer(t, Config{})
	if !p.c.AwaitingSettingsAck() {
		t.Fatal("a new connection owes no ACK for its SETTINGS")
	}
	p.start()
	if !p.c.AwaitingSettingsAck() {
		t.Fatal("the client's own SETTINGS counted as the ACK")
	}
	p.fr.WriteSettingsAck()
	if _, err := p.feed(); err != nil || p.c.AwaitingSettingsAck() {
		t.Fatalf("after the ACK: %v, awaiting %v", err, p.c.AwaitingSettingsAck())
	}
	p.fr.WriteSettingsAck()
	if _, err := p.feed(); err != nil || p.c.AwaitingSettingsAck() {
		t.Fatalf("after a second ACK: %v, awaiting %v", err, p.c.AwaitingSettingsAck())
	}

	q := newPeer(t, Config{})
	q.start()
	q.c.GoAway(ErrSettingsTimeout)
	gs := q.out()
	if len(gs) != 1 || gs[0].typ != http2.FrameGoAway || gs[0].code != http2.ErrCodeSettingsTimeout || !q.c.Done() {
		t.Fatalf("after the timeout: %+v, done %v; want GOAWAY SETTINGS_TIMEOUT", gs, q.c.Done())
	}
}

func TestRecvFlowControl(t *testing.T) {
	p := newPeer(t, Config{StreamWindow: 100, ConnWindow: 1 << 20})
	p.start()
	p.headers(1, false, getRoot...)
	s := p.one(EvRequest).Stream
	p.fr.WriteData(1, false, make([]byte, 60))
	if ev := p.one(EvData); len(ev.Data) != 60 || ev.End {
		t.Fatalf("DATA event %+v", ev)
	}
	p.c.Consume(s, 60) // past half the window: given back
	gs := p.out()
	if len(gs) != 1 || gs[0].typ != http2.FrameWindowUpdate || gs[0].stream != 1 || gs[0].incr != 60 {
		t.Fatalf("after Consume %+v, want WINDOW_UPDATE 60 on stream 1 (the connection's is not due)", gs)
	}
	p.fr.WriteData(1, false, make([]byte, 101))
	evs := p.streamErr(1, ErrFlowControl)
	if len(evs) != 1 || evs[0].Kind != EvReset {
		t.Fatalf("events %+v, want the reset", evs)
	}
}

func TestConnWindowExceeded(t *testing.T) {
	p := newPeer(t, Config{StreamWindow: 1 << 20, ConnWindow: defaultWindow})
	p.start()
	p.headers(1, false, getRoot...)
	p.one(EvRequest)
	for range 4 {
		p.fr.WriteData(1, false, make([]byte, 16384))
	}
	p.fr.WriteData(1, false, make([]byte, 16384)) // 81920 > 65535, none given back
	p.connErr(ErrFlowControl)
}

func TestMaxConcurrentStreams(t *testing.T) {
	p := newPeer(t, Config{MaxConcurrentStreams: 2})
	p.start()
	p.headers(1, true, getRoot...)
	s1 := p.one(EvRequest).Stream
	p.headers(3, true, getRoot...)
	p.one(EvRequest)
	p.headers(5, true, getRoot...)
	p.streamErr(5, ErrRefusedStream)
	// A stream the client reset still counts until released.
	p.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	if ev := p.one(EvReset); ev.Stream != s1 || ev.Code != ErrCancel {
		t.Fatalf("reset event %+v", ev)
	}
	p.headers(7, true, getRoot...)
	p.streamErr(7, ErrRefusedStream)
	p.c.Release(s1)
	p.headers(9, true, getRoot...)
	p.one(EvRequest)
}

func TestRapidReset(t *testing.T) {
	p := newPeer(t, Config{MaxConcurrentStreams: 4, MaxResets: 8})
	p.start()
	id := uint32(1)
	for i := 0; ; i++ {
		p.headers(id, true, getRoot...)
		p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		evs, err := p.feed()
		if err != nil {
			var ce *ConnError
			if !errors.As(err, &ce) || ce.Code != ErrEnhanceYourCalm || i != 8 {
				t.Fatalf("after %d resets: %v, want ENHANCE_YOUR_CALM after 9", i+1, err)
			}
			return
		}
		for _, ev := range evs {
			if ev.Kind == EvRequest {
				p.c.Release(ev.Stream)
			}
		}
		id += 2
	}
}

func TestResponsesPayResetsBack(t *testing.T) {
	p := newPeer(t, Config{MaxConcurrentStreams: 4, MaxResets: 2})
	p.start()
	for id := uint32(1); id < 60; id += 4 {
		// One answered, one reset: the budget never runs out.
		p.headers(id, true, getRoot...)
		s := p.one(EvRequest).Stream
		p.c.WriteHeaders(s, 204, nil, true)
		p.c.Release(s)
		p.headers(id+2, true, getRoot...)
		p.fr.WriteRSTStream(id+2, http2.ErrCodeCancel)
		evs, err := p.feed()
		if err != nil {
			t.Fatalf("stream %d: %v", id, err)
		}
		p.c.Release(evs[0].Stream)
	}
}
