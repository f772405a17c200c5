package h2

import (
	"bytes"

	"golang.org/x/net/http2/hpack"
)

// Config is what a Conn enforces and advertises. Zero fields take the
// defaults below.
type Config struct {
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS, and how
	// many streams may exist before the driver Releases them.
	MaxConcurrentStreams uint32
	// MaxHeaderListSize is SETTINGS_MAX_HEADER_LIST_SIZE: a request head
	// larger than this (RFC 7541 sizes) is answered 431.
	MaxHeaderListSize uint32
	// StreamWindow is each stream's receive window for a request body,
	// ConnWindow the connection's.
	StreamWindow, ConnWindow uint32
	// MaxResets is how far the client may reset streams ahead of the
	// responses finished before it gets GOAWAY ENHANCE_YOUR_CALM.
	MaxResets int
}

const (
	defaultMaxStreams    = 128
	defaultMaxHeaderList = 1 << 20
	defaultStreamWindow  = 1 << 20
	defaultConnWindow    = 4 << 20
	// maxContinuations bounds a header block's frames: a block of empty
	// CONTINUATION frames costs the server and says nothing.
	maxContinuations = 256
)

func (c Config) withDefaults() Config {
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = defaultMaxStreams
	}
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = defaultMaxHeaderList
	}
	if c.StreamWindow == 0 {
		c.StreamWindow = defaultStreamWindow
	}
	if c.ConnWindow == 0 {
		c.ConnWindow = defaultConnWindow
	}
	if c.MaxResets == 0 {
		c.MaxResets = 2 * int(c.MaxConcurrentStreams)
	}
	return c
}

type streamState uint8

const (
	stateOpen streamState = iota
	stateHalfClosedRemote
	stateHalfClosedLocal
	stateClosed
)

// Stream is one request and its response.
type Stream struct {
	ID         uint32
	state      streamState
	sendWindow int64
	recvWindow int64 // what the client may still send
	unacked    int64 // bytes consumed, not yet given back by WINDOW_UPDATE
	wantLen    int64 // content-length, -1 if none
	gotLen     int64
	released   bool
	// User is the driver's.
	User any
}

// Closed reports whether nothing more may be sent on s: the response
// ended, or either side reset it.
func (s *Stream) Closed() bool { return s.state == stateClosed || s.state == stateHalfClosedLocal }

// Over reports whether s is closed both ways.
func (s *Stream) Over() bool { return s.state == stateClosed }

// EventKind says what an Event is.
type EventKind uint8

const (
	// EvRequest: a request head arrived; End says it has no body.
	EvRequest EventKind = iota
	// EvData: body bytes, End on the last (trailers end a body too).
	// Data is valid until the next Feed; Consume gives its window back.
	EvData
	// EvReset: the stream is over before its response ended (the client
	// reset it, or the request broke the rules); the driver stops its
	// handler and Releases it.
	EvReset
	// EvWindow: the peer opened the send window of Stream, or of every
	// stream when Stream is nil.
	EvWindow
)

// Event is what Feed found.
type Event struct {
	Kind   EventKind
	Stream *Stream
	Req    *Request
	Data   []byte
	End    bool
	Code   ErrCode
}

// Request is a request head, validated.
type Request struct {
	Method, Scheme, Authority, Path string
	// Header holds the regular fields in order, names in lower case.
	Header []hpack.HeaderField
	// ContentLength is the content-length field, -1 without one.
	ContentLength int64
}

// Conn is one HTTP/2 server connection.
type Conn struct {
	cfg Config

	in   []byte // a partial frame from the last Feed
	out  []byte
	evs  []Event
	err  *ConnError
	pref bool // the preface was read
	sett bool // the client's first SETTINGS was read
	// unackedSettings counts the SETTINGS frames sent that the client
	// has not acknowledged (RFC 9113 section 6.5.3).
	unackedSettings int

	streams    map[uint32]*Stream
	maxClient  uint32 // highest stream the client opened
	goAwayID   uint32 // last stream served after our GOAWAY
	goneAway   bool   // we sent GOAWAY
	peerGoAway bool
	resetDebt  int

	sendWindow   int64
	recvWindow   int64
	connUnacked  int64
	peerWindow   int64 // SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int

	dec   *hpack.Decoder
	enc   *hpack.Encoder
	ebuf  bytes.Buffer
	block headerBlock
}

// NewConn starts a server connection: its SETTINGS and the connection's
// window are the first bytes of output.
func NewConn(cfg Config) *Conn {
	cfg = cfg.withDefaults()
	c := &Conn{
		cfg:          cfg,
		streams:      make(map[uint32]*Stream),
		sendWindow:   defaultWindow,
		recvWindow:   int64(cfg.ConnWindow),
		peerWindow:   defaultWindow,
		peerMaxFrame: defaultFrameSize,
	}
	c.dec = hpack.NewDecoder(4096, c.onField)
	c.dec.SetMaxStringLength(int(cfg.MaxHeaderListSize))
	c.enc = hpack.NewEncoder(&c.ebuf)
	c.out = appendSettings(c.buf(),
		setting{settingMaxConcurrent, cfg.MaxConcurrentStreams},
		setting{settingInitialWindowSize, cfg.StreamWindow},
		setting{settingMaxHeaderListSize, cfg.MaxHeaderListSize},
		setting{settingEnablePush, 0})
	c.unackedSettings = 1
	if cfg.ConnWindow > defaultWindow {
		c.out = appendWindowUpdate(c.buf(), 0, cfg.ConnWindow-defaultWindow)
	}
	return c
}

// Pending reports how many bytes wait in the output.
func (c *Conn) Pending() int { return len(c.out) }

// Active is how many streams exist: open, or not yet released.
func (c *Conn) Active() int { return len(c.streams) }

// Done reports whether the connection has nothing left to do: it broke,
// or GOAWAY was sent or received and every stream is released.
func (c *Conn) Done() bool {
	return c.err != nil || (c.goneAway || c.peerGoAway) && len(c.streams) == 0
}

// ReadingHead reports whether a header block is open: the client owes
// its CONTINUATION frames.
func (c *Conn) ReadingHead() bool { return c.block.stream != 0 }

// AwaitingSettingsAck reports whether a SETTINGS frame the connection
// sent is still unacknowledged. The driver owns time: one that waits too
// long for the ACK ends the connection with GoAway(ErrSettingsTimeout).
func (c *Conn) AwaitingSettingsAck() bool { return c.unackedSettings > 0 }

// GoneAway reports whether either side sent GOAWAY.
func (c *Conn) GoneAway() bool { return c.goneAway || c.peerGoAway }

// Err is the connection error, once there is one.
func (c *Conn) Err() *ConnError { return c.err }

// Feed reads p and returns what happened in it; the events are valid
// until the next Feed. A *ConnError means the connection is over (its
// GOAWAY is in the output).
func (c *Conn) Feed(p []byte) ([]Event, error) {
	c.evs = c.evs[:0]
	if c.err != nil {
		return nil, c.err
	}
	data := p
	if len(c.in) > 0 {
		c.in = append(c.in, p...)
		data = c.in
	}
	data = c.frames(data)
	if c.err != nil {
		c.in = c.in[:0]
		return c.evs, c.err
	}
	// Keep the partial frame; the events' Data may point into p or c.in,
	// so the copy goes after them (append to a fresh slice when it is c.in).
	switch {
	case len(data) == 0:
		c.in = c.in[:0]
	case len(c.in) > 0:
		c.in = append([]byte(nil), data...)
	default:
		c.in = append(c.in[:0], data...)
	}
	return c.evs, nil
}

// frames handles every complete frame at the start of data and returns
// the rest.
func (c *Conn) frames(data []byte) []byte {
	if !c.pref {
		n := min(len(data), len(Preface))
		if string(data[:n]) != Preface[:n] {
			c.fail(ErrProtocol, "bad connection preface")
			return nil
		}
		if n < len(Preface) {
			return data
		}
		c.pref = true
		data = data[len(Preface):]
	}
	for len(data) >= frameHeaderLen && c.err == nil {
		h := parseHeader(data)
		if h.length > defaultFrameSize {
			c.fail(ErrFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
			return nil
		}
		end := frameHeaderLen + int(h.length)
		if len(data) < end {
			break
		}
		c.frame(h, data[frameHeaderLen:end])
		data = data[end:]
	}
	return data
}

// fail ends the connection with GOAWAY code.
func (c *Conn) fail(code ErrCode, reason string) {
	if c.err != nil {
		return
	}
	c.err = &ConnError{Code: code, Reason: reason}
	c.out = appendGoAway(c.buf(), c.maxClient, code, "")
	c.goneAway = true
}

// GoAway tells the client no stream after the last it opened will be
// served: with ErrNo the ones open finish, and Done reports when.
func (c *Conn) GoAway(code ErrCode) {
	if code != ErrNo {
		c.fail(code, "closed by the server")
		return
	}
	if c.goneAway {
		return
	}
	c.goneAway = true
	c.goAwayID = c.maxClient
	c.out = appendGoAway(c.buf(), c.maxClient, ErrNo, "")
}

func (c *Conn) frame(h header, p []byte) {
	if c.block.stream != 0 && (h.typ != frameContinuation || h.stream != c.block.stream) {
		c.fail(ErrProtocol, "a header block was interrupted")
		return
	}
	if !c.sett && h.typ != frameSettings {
		c.fail(ErrProtocol, "the first frame was not SETTINGS")
		return
	}
	switch h.typ {
	case frameData:
		c.onData(h, p)
	case frameHeaders:
		c.onHeaders(h, p)
	case framePriority:
		c.onPriority(h, p)
	case frameRSTStream:
		c.onRST(h, p)
	case frameSettings:
		c.onSettings(h, p)
	case framePushPromise:
		c.fail(ErrProtocol, "PUSH_PROMISE from a client")
	case framePing:
		c.onPing(h, p)
	case frameGoAway:
		if h.stream != 0 {
			c.fail(ErrProtocol, "GOAWAY on a stream")
			return
		}
		if len(p) < 8 {
			c.fail(ErrFrameSize, "short GOAWAY")
			return
		}
		c.peerGoAway = true
	case frameWindowUpdate:
		c.onWindowUpdate(h, p)
	case frameContinuation:
		if c.block.stream == 0 {
			c.fail(ErrProtocol, "CONTINUATION without HEADERS")
			return
		}
		c.onContinuation(h, p)
	default:
		// Unknown frame types are ignored (RFC 9113 section 4.1).
	}
}

// unpad strips a frame's padding.
func (c *Conn) unpad(h header, p []byte) ([]byte, bool) {
	if h.flags&flagPadded == 0 {
		return p, true
	}
	if len(p) < 1 || int(p[0]) >= len(p) {
		c.fail(ErrProtocol, "padding longer than the frame")
		return nil, false
	}
	return p[1 : len(p)-int(p[0])], true
}

// idle reports whether id names a stream the client has not opened.
func (c *Conn) idle(id uint32) bool { return id > c.maxClient }

// resetStream sends RST_STREAM for a stream error; the driver hears of
// it when it knows the stream.
func (c *Conn) resetStream(id uint32, code ErrCode) {
	c.out = appendRST(c.buf(), id, code)
	if s := c.streams[id]; s != nil && s.state != stateClosed {
		s.state = stateClosed
		c.evs = append(c.evs, Event{Kind: EvReset, Stream: s, Code: code})
		c.drop(s)
	}
}

// drop forgets s once it is closed and released.
func (c *Conn) drop(s *Stream) {
	if s.state == stateClosed && s.released {
		delete(c.streams, s.ID)
	}
}

func (c *Conn) onData(h header, p []byte) {
	if h.stream == 0 {
		c.fail(ErrProtocol, "DATA on stream 0")
		return
	}
	// The whole frame counts against the windows, padding included.
	n := int64(len(p))
	if n > c.recvWindow {
		c.fail(ErrFlowControl, "DATA beyond the connection window")
		return
	}
	c.recvWindow -= n
	data, ok := c.unpad(h, p)
	if !ok {
		return
	}
	s := c.streams[h.stream]
	if s == nil {
		if c.idle(h.stream) {
			c.fail(ErrProtocol, "DATA on an idle stream")
			return
		}
		c.giveConn(n)
		c.out = appendRST(c.buf(), h.stream, ErrStreamClosed)
		return
	}
	if s.state == stateHalfClosedRemote || s.state == stateClosed {
		c.giveConn(n)
		c.resetStream(s.ID, ErrStreamClosed)
		return
	}
	if n > s.recvWindow {
		c.giveConn(n)
		c.resetStream(s.ID, ErrFlowControl)
		return
	}
	s.recvWindow -= n
	// Padding is consumed as it arrives.
	c.Consume(s, int(n)-len(data))
	s.gotLen += int64(len(data))
	end := h.flags&flagEndStream != 0
	if s.wantLen >= 0 && (s.gotLen > s.wantLen || end && s.gotLen != s.wantLen) {
		c.resetStream(s.ID, ErrProtocol)
		return
	}
	if end {
		c.closeRemote(s)
	}
	c.evs = append(c.evs, Event{Kind: EvData, Stream: s, Data: data, End: end})
}

// giveConn returns n bytes to the connection window: the handler took
// them, or they were dropped. The connection window bounds what all of a
// connection's streams hold unread together.
func (c *Conn) giveConn(n int64) {
	c.connUnacked += n
	if c.connUnacked >= int64(c.cfg.ConnWindow)/2 {
		c.out = appendWindowUpdate(c.buf(), 0, uint32(c.connUnacked))
		c.recvWindow += c.connUnacked
		c.connUnacked = 0
	}
}

// Consume gives n bytes of s's body back to the windows once the handler
// has taken them (or dropped them).
func (c *Conn) Consume(s *Stream, n int) {
	if n <= 0 {
		return
	}
	c.giveConn(int64(n))
	if s.state == stateClosed || s.state == stateHalfClosedRemote {
		return
	}
	s.unacked += int64(n)
	if s.unacked >= int64(c.cfg.StreamWindow)/2 {
		c.out = appendWindowUpdate(c.buf(), s.ID, uint32(s.unacked))
		s.recvWindow += s.unacked
		s.unacked = 0
	}
}

func (c *Conn) closeRemote(s *Stream) {
	switch s.state {
	case stateOpen:
		s.state = stateHalfClosedRemote
	case stateHalfClosedLocal:
		s.state = stateClosed
		c.drop(s)
	}
}

func (c *Conn) closeLocal(s *Stream) {
	switch s.state {
	case stateOpen:
		s.state = stateHalfClosedLocal
	case stateHalfClosedRemote:
		s.state = stateClosed
		c.drop(s)
	}
	if c.resetDebt > 0 {
		c.resetDebt--
	}
}
