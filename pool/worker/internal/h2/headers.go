package h2

import (
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is the header block being read: a HEADERS frame and its
// CONTINUATIONs. Fields are checked as the decoder gives them, so a
// block is never buffered whole.
type headerBlock struct {
	stream  uint32 // 0 when no block is open
	end     bool   // END_STREAM was on the HEADERS
	trailer bool   // trailers of an open stream
	ignore  bool   // decoded only to keep HPACK in step
	refuse  bool   // over max concurrent streams
	bytes   int    // encoded bytes so far
	frames  int
	size    uint32 // RFC 7541 size of the fields so far
	large   bool   // over MaxHeaderListSize
	bad     string // why the request is malformed; "" if it is not
	regular bool   // a regular field came: no pseudo-header may follow
	req     *Request
}

func (c *Conn) onHeaders(h header, p []byte) {
	if h.stream == 0 {
		c.fail(ErrProtocol, "HEADERS on stream 0")
		return
	}
	if h.stream%2 == 0 {
		c.fail(ErrProtocol, "a client stream with an even number")
		return
	}
	p, ok := c.unpad(h, p)
	if !ok {
		return
	}
	if h.flags&flagPriority != 0 {
		if len(p) < 5 {
			c.fail(ErrFrameSize, "short HEADERS priority")
			return
		}
		if binary.BigEndian.Uint32(p)&(1<<31-1) == h.stream {
			// Decoded anyway below, then refused: HPACK stays in step.
			c.block.bad = "a stream that depends on itself"
		}
		p = p[5:]
	}
	b := &c.block
	*b = headerBlock{stream: h.stream, end: h.flags&flagEndStream != 0, bad: b.bad}
	switch s := c.streams[h.stream]; {
	case s != nil:
		if s.state == stateHalfClosedRemote || s.state == stateClosed {
			c.fail(ErrStreamClosed, "HEADERS on a closed stream")
			return
		}
		if !b.end {
			c.fail(ErrProtocol, "trailers without END_STREAM")
			return
		}
		b.trailer = true
	case !c.idle(h.stream):
		c.fail(ErrProtocol, "HEADERS on a closed stream")
		return
	case c.goneAway:
		// After GOAWAY new streams are not served (section 6.8).
		b.ignore = true
	default:
		c.maxClient = h.stream
		b.refuse = len(c.streams) >= int(c.cfg.MaxConcurrentStreams)
		if !b.refuse {
			b.req = &Request{ContentLength: -1}
		}
	}
	c.fragment(h, p)
}

func (c *Conn) onContinuation(h header, p []byte) {
	c.block.frames++
	if c.block.frames > maxContinuations {
		c.fail(ErrEnhanceYourCalm, "too many CONTINUATION frames")
		return
	}
	c.fragment(h, p)
}

// fragment decodes one piece of the block, and ends it on END_HEADERS.
func (c *Conn) fragment(h header, p []byte) {
	b := &c.block
	b.bytes += len(p)
	if b.bytes > int(c.cfg.MaxHeaderListSize)+defaultFrameSize {
		// Encoded bytes past the list size decode to more still: this is
		// a flood, not a request to answer 431.
		c.fail(ErrEnhanceYourCalm, "header block too large")
		return
	}
	if _, err := c.dec.Write(p); err != nil {
		c.fail(ErrCompression, "bad HPACK: "+err.Error())
		return
	}
	if h.flags&flagEndHeaders == 0 {
		return
	}
	if err := c.dec.Close(); err != nil {
		c.fail(ErrCompression, "bad HPACK: "+err.Error())
		return
	}
	c.endBlock()
}

// onField checks one decoded field and keeps it.
func (c *Conn) onField(f hpack.HeaderField) {
	b := &c.block
	b.size += f.Size()
	if b.size > c.cfg.MaxHeaderListSize {
		b.large = true
	}
	if b.ignore || b.refuse || b.large || b.bad != "" {
		return
	}
	if f.IsPseudo() {
		if b.trailer || b.regular {
			b.bad = "a pseudo-header after the regular fields or in trailers"
			return
		}
		r := b.req
		var dst *string
		switch f.Name {
		case ":method":
			dst = &r.Method
		case ":scheme":
			dst = &r.Scheme
		case ":authority":
			dst = &r.Authority
		case ":path":
			dst = &r.Path
		default:
			b.bad = "unknown pseudo-header " + f.Name
			return
		}
		if *dst != "" || f.Value == "" {
			b.bad = "pseudo-header " + f.Name + " empty or repeated"
			return
		}
		*dst = f.Value
		return
	}
	b.regular = true
	if !validName(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) {
		b.bad = "invalid field " + strconv.Quote(f.Name)
		return
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		b.bad = "connection-specific field " + f.Name
		return
	case "te":
		if f.Value != "trailers" {
			b.bad = "te other than trailers"
			return
		}
	case "content-length":
		if b.trailer {
			break
		}
		n, err := strconv.ParseUint(f.Value, 10, 63)
		if err != nil || b.req.ContentLength >= 0 && int64(n) != b.req.ContentLength {
			b.bad = "bad content-length"
			return
		}
		b.req.ContentLength = int64(n)
	}
	if !b.trailer {
		b.req.Header = append(b.req.Header, f)
	}
}

// validName reports whether name is a token in lower case.
func validName(name string) bool {
	if !httpguts.ValidHeaderFieldName(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			return false
		}
	}
	return true
}

func (c *Conn) endBlock() {
	b := c.block
	c.block = headerBlock{}
	switch {
	case b.ignore:
		return
	case b.refuse:
		c.out = appendRST(c.buf(), b.stream, ErrRefusedStream)
		return
	case b.trailer:
		s := c.streams[b.stream]
		if b.bad != "" {
			c.resetStream(s.ID, ErrProtocol)
			return
		}
		if s.wantLen >= 0 && s.gotLen != s.wantLen {
			c.resetStream(s.ID, ErrProtocol)
			return
		}
		c.closeRemote(s)
		c.evs = append(c.evs, Event{Kind: EvData, Stream: s, End: true})
		return
	}
	r := b.req
	if b.bad == "" && !b.large {
		b.bad = checkPseudo(r)
	}
	if b.bad != "" {
		c.resetDebt++
		if c.resetDebt > c.cfg.MaxResets {
			c.fail(ErrEnhanceYourCalm, "too many malformed requests")
			return
		}
		c.out = appendRST(c.buf(), b.stream, ErrProtocol)
		return
	}
	s := &Stream{ID: b.stream, sendWindow: c.peerWindow, recvWindow: int64(c.cfg.StreamWindow), wantLen: r.ContentLength}
	c.streams[s.ID] = s
	if b.end {
		if r.ContentLength > 0 {
			s.state = stateClosed
			c.out = appendRST(c.buf(), s.ID, ErrProtocol)
			s.released = true
			c.drop(s)
			return
		}
		s.state = stateHalfClosedRemote
	}
	if b.large {
		// 431, as net/http answers; the body, if any, is read and dropped.
		c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "431"})
		c.writeBlock(s, true)
		s.released = true
		c.drop(s)
		return
	}
	c.evs = append(c.evs, Event{Kind: EvRequest, Stream: s, Req: r, End: b.end})
}

// checkPseudo says what is wrong with a request's pseudo-headers, or "".
func checkPseudo(r *Request) string {
	if r.Method == "" {
		return "no :method"
	}
	if r.Method == "CONNECT" {
		if r.Scheme != "" || r.Path != "" || r.Authority == "" {
			return "CONNECT with :scheme or :path, or without :authority"
		}
		return ""
	}
	if r.Scheme == "" || r.Path == "" {
		return "no :scheme or :path"
	}
	if !strings.HasPrefix(r.Path, "/") && !(r.Path == "*" && r.Method == "OPTIONS") {
		return ":path neither absolute nor * for OPTIONS"
	}
	return ""
}
