package h2

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// peer is a client made of x/net/http2's Framer, talking to a Conn.
type peer struct {
	t    *testing.T
	c    *Conn
	buf  bytes.Buffer
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	dec  *hpack.Decoder
}

// got is a frame the server wrote.
type got struct {
	typ    http2.FrameType
	stream uint32
	flags  http2.Flags
	code   http2.ErrCode // RST_STREAM, GOAWAY
	last   uint32        // GOAWAY
	data   []byte        // DATA, PING
	fields []hpack.HeaderField
	incr   uint32
	sets   []http2.Setting
}

func newPeer(t *testing.T, cfg Config) *peer {
	t.Helper()
	p := &peer{t: t, c: NewConn(cfg)}
	p.fr = http2.NewFramer(&p.buf, nil)
	p.enc = hpack.NewEncoder(&p.hbuf)
	p.dec = hpack.NewDecoder(4096, nil)
	return p
}

// start sends the preface and SETTINGS and reads the server's greeting.
func (p *peer) start(ss ...http2.Setting) []got {
	p.t.Helper()
	p.buf.WriteString(Preface)
	p.fr.WriteSettings(ss...)
	if _, err := p.feed(); err != nil {
		p.t.Fatalf("start: %v", err)
	}
	return p.out()
}

func (p *peer) feed() ([]Event, error) {
	b := append([]byte(nil), p.buf.Bytes()...)
	p.buf.Reset()
	return p.c.Feed(b)
}

// out parses what the server wrote since the last call.
func (p *peer) out() []got {
	p.t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(p.c.TakeOutput()))
	var gs []got
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return gs
		}
		if err != nil {
			p.t.Fatalf("server wrote a bad frame: %v", err)
		}
		h := f.Header()
		g := got{typ: h.Type, stream: h.StreamID, flags: h.Flags}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			g.code = f.ErrCode
		case *http2.GoAwayFrame:
			g.code, g.last = f.ErrCode, f.LastStreamID
		case *http2.DataFrame:
			g.data = append([]byte(nil), f.Data()...)
		case *http2.PingFrame:
			g.data = append([]byte(nil), f.Data[:]...)
		case *http2.HeadersFrame:
			g.fields, err = p.dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				p.t.Fatalf("server wrote bad HPACK: %v", err)
			}
		case *http2.WindowUpdateFrame:
			g.incr = f.Increment
		case *http2.SettingsFrame:
			f.ForeachSetting(func(s http2.Setting) error { g.sets = append(g.sets, s); return nil })
		}
		gs = append(gs, g)
	}
}

// block encodes fields as pairs: name, value, name, value...
func (p *peer) block(kv ...string) []byte {
	p.hbuf.Reset()
	for i := 0; i < len(kv); i += 2 {
		p.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), p.hbuf.Bytes()...)
}

var getRoot = []string{":method", "GET", ":scheme", "https", ":authority", "example.test", ":path", "/"}

func (p *peer) headers(stream uint32, end bool, kv ...string) {
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: p.block(kv...), EndStream: end, EndHeaders: true})
}

// one feeds what was written and expects one event.
func (p *peer) one(kind EventKind) Event {
	p.t.Helper()
	evs, err := p.feed()
	if err != nil {
		p.t.Fatalf("feed: %v", err)
	}
	if len(evs) != 1 || evs[0].Kind != kind {
		p.t.Fatalf("events %+v, want one of kind %d", evs, kind)
	}
	return evs[0]
}

// connErr feeds and expects GOAWAY with code.
func (p *peer) connErr(code ErrCode) {
	p.t.Helper()
	_, err := p.feed()
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Code != code {
		p.t.Fatalf("feed: %v, want connection error %v", err, code)
	}
	gs := p.out()
	if len(gs) == 0 || gs[len(gs)-1].typ != http2.FrameGoAway || gs[len(gs)-1].code != http2.ErrCode(code) {
		p.t.Fatalf("server wrote %+v, want GOAWAY %v last", gs, code)
	}
	if !p.c.Done() {
		p.t.Fatal("connection not done after a connection error")
	}
}

// streamErr feeds and expects RST_STREAM code on stream.
func (p *peer) streamErr(stream uint32, code ErrCode) []Event {
	p.t.Helper()
	evs, err := p.feed()
	if err != nil {
		p.t.Fatalf("feed: %v, want a stream error", err)
	}
	for _, g := range p.out() {
		if g.typ == http2.FrameRSTStream && g.stream == stream {
			if g.code != http2.ErrCode(code) {
				p.t.Fatalf("RST_STREAM %v, want %v", g.code, code)
			}
			return evs
		}
	}
	p.t.Fatalf("no RST_STREAM on stream %d", stream)
	return nil
}

func TestGreetingAndSettingsAck(t *testing.T) {
	p := newPeer(t, Config{MaxConcurrentStreams: 7, StreamWindow: 1 << 17})
	gs := p.start()
	if len(gs) < 3 || gs[0].typ != http2.FrameSettings || gs[0].flags.Has(http2.FlagSettingsAck) {
		t.Fatalf("greeting %+v: want SETTINGS first", gs)
	}
	want := map[http2.SettingID]uint32{http2.SettingMaxConcurrentStreams: 7, http2.SettingInitialWindowSize: 1 << 17}
	for _, s := range gs[0].sets {
		if v, ok := want[s.ID]; ok && v != s.Val {
			t.Errorf("setting %v = %d, want %d", s.ID, s.Val, v)
		}
		delete(want, s.ID)
	}
	if len(want) > 0 {
		t.Errorf("settings missing: %v", want)
	}
	if gs[1].typ != http2.FrameWindowUpdate || gs[1].stream != 0 || gs[1].incr != defaultConnWindow-defaultWindow {
		t.Errorf("second frame %+v, want the connection's WINDOW_UPDATE", gs[1])
	}
	if gs[2].typ != http2.FrameSettings || !gs[2].flags.Has(http2.FlagSettingsAck) {
		t.Errorf("third frame %+v, want SETTINGS ACK", gs[2])
	}
}

func TestPrefaceByteByByte(t *testing.T) {
	p := newPeer(t, Config{})
	p.c.TakeOutput()
	p.buf.WriteString(Preface)
	p.fr.WriteSettings()
	p.headers(1, true, getRoot...)
	all := append([]byte(nil), p.buf.Bytes()...)
	p.buf.Reset()
	var reqs int
	for i := range all {
		evs, err := p.c.Feed(all[i : i+1])
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		for _, ev := range evs {
			if ev.Kind == EvRequest && ev.Req.Path == "/" && ev.End {
				reqs++
			}
		}
	}
	if reqs != 1 {
		t.Fatalf("%d requests from a byte-by-byte feed, want 1", reqs)
	}
}

func TestConnectionErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  ErrCode
		write func(p *peer)
	}{
		{"bad preface", ErrProtocol, func(p *peer) { p.buf.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }},
		{"first frame not SETTINGS", ErrProtocol, func(p *peer) { p.buf.WriteString(Preface); p.fr.WritePing(false, [8]byte{}) }},
		{"frame too large", ErrFrameSize, func(p *peer) { p.fr.WriteRawFrame(0xfa, 0, 0, make([]byte, defaultFrameSize+1)) }},
		{"PING wrong size", ErrFrameSize, func(p *peer) { p.fr.WriteRawFrame(http2.FramePing, 0, 0, make([]byte, 7)) }},
		{"PING on a stream", ErrProtocol, func(p *peer) { p.fr.WriteRawFrame(http2.FramePing, 0, 1, make([]byte, 8)) }},
		{"SETTINGS ENABLE_PUSH=2", ErrProtocol, func(p *peer) { p.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 2}) }},
		{"SETTINGS window too large", ErrFlowControl, func(p *peer) {
			p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		}},
		{"SETTINGS frame size too small", ErrProtocol, func(p *peer) { p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100}) }},
		{"SETTINGS length", ErrFrameSize, func(p *peer) { p.fr.WriteRawFrame(http2.FrameSettings, 0, 0, make([]byte, 5)) }},
		{"SETTINGS ACK payload", ErrFrameSize, func(p *peer) { p.fr.WriteRawFrame(http2.FrameSettings, 1, 0, make([]byte, 6)) }},
		{"SETTINGS on a stream", ErrProtocol, func(p *peer) { p.fr.WriteRawFrame(http2.FrameSettings, 0, 1, nil) }},
		{"PUSH_PROMISE", ErrProtocol, func(p *peer) {
			p.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true})
		}},
		{"even stream", ErrProtocol, func(p *peer) { p.headers(2, true, getRoot...) }},
		{"stream id going down", ErrProtocol, func(p *peer) { p.headers(5, true, getRoot...); p.headers(3, true, getRoot...) }},
		{"DATA on stream 0", ErrProtocol, func(p *peer) { p.fr.WriteRawFrame(http2.FrameData, 0, 0, []byte("x")) }},
		{"DATA on an idle stream", ErrProtocol, func(p *peer) { p.fr.WriteData(9, false, []byte("x")) }},
		{"HEADERS on stream 0", ErrProtocol, func(p *peer) { p.fr.WriteRawFrame(http2.FrameHeaders, 4, 0, p.block(getRoot...)) }},
		{"RST_STREAM on an idle stream", ErrProtocol, func(p *peer) { p.fr.WriteRSTStream(11, http2.ErrCodeCancel) }},
		{"RST_STREAM wrong size", ErrFrameSize, func(p *peer) {
			p.headers(1, false, getRoot...)
			p.fr.WriteRawFrame(http2.FrameRSTStream, 0, 1, make([]byte, 3))
		}},
		{"WINDOW_UPDATE of 0 on the connection", ErrProtocol, func(p *peer) { p.fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 0, make([]byte, 4)) }},
		{"WINDOW_UPDATE on an idle stream", ErrProtocol, func(p *peer) { p.fr.WriteWindowUpdate(13, 1) }},
		{"WINDOW_UPDATE wrong size", ErrFrameSize, func(p *peer) { p.fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 0, make([]byte, 3)) }},
		{"connection window overflow", ErrFlowControl, func(p *peer) { p.fr.WriteWindowUpdate(0, 1<<31-1) }},
		{"HEADERS interrupted", ErrProtocol, func(p *peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getRoot...)})
			p.fr.WritePing(false, [8]byte{})
		}},
		{"CONTINUATION on another stream", ErrProtocol, func(p *peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getRoot...)})
			p.fr.WriteContinuation(3, true, nil)
		}},
		{"CONTINUATION without HEADERS", ErrProtocol, func(p *peer) { p.fr.WriteContinuation(1, true, nil) }},
		{"CONTINUATION flood", ErrEnhanceYourCalm, func(p *peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getRoot...)})
			for range maxContinuations + 1 {
				p.fr.WriteContinuation(1, false, nil)
			}
		}},
		{"header block too large", ErrEnhanceYourCalm, func(p *peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getRoot...)})
			junk := bytes.Repeat([]byte{0x40, 1, 'x', 1, 'y'}, 3000) // literal fields, indexed
			for i := 0; i < 10; i++ {
				p.fr.WriteContinuation(1, false, junk)
			}
		}},
		{"bad HPACK", ErrCompression, func(p *peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndHeaders: true})
		}},
		{"padding too long", ErrProtocol, func(p *peer) {
			p.headers(1, false, getRoot...)
			p.fr.WriteRawFrame(http2.FrameData, 0x8, 1, []byte{5, 'a'})
		}},
		{"trailers without END_STREAM", ErrProtocol, func(p *peer) { p.headers(1, false, getRoot...); p.headers(1, false, "x-t", "1") }},
		{"HEADERS on a half-closed stream", ErrStreamClosed, func(p *peer) { p.headers(1, true, getRoot...); p.headers(1, true, "x-t", "1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, Config{MaxHeaderListSize: 8 << 10})
			if tc.name != "bad preface" && tc.name != "first frame not SETTINGS" {
				p.start()
			}
			tc.write(p)
			p.connErr(tc.code)
		})
	}
}

func TestGoAwayLetsOpenStreamsFinish(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	p.headers(1, true, getRoot...)
	s := p.one(EvRequest).Stream
	p.c.GoAway(ErrNo)
	if gs := p.out(); len(gs) != 1 || gs[0].typ != http2.FrameGoAway || gs[0].last != 1 {
		t.Fatalf("GOAWAY %+v", gs)
	}
	p.headers(3, true, getRoot...) // after the GOAWAY: not served
	if evs, err := p.feed(); err != nil || len(evs) != 0 {
		t.Fatalf("a stream after GOAWAY gave %+v %v", evs, err)
	}
	if p.c.Done() {
		t.Fatal("done with stream 1 open")
	}
	p.c.WriteHeaders(s, 200, nil, true)
	p.c.Release(s)
	if !p.c.Done() {
		t.Fatal("not done once the last stream ended")
	}
}
