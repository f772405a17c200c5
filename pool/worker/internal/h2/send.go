package h2

import (
	"errors"
	"slices"

	"golang.org/x/net/http2/hpack"
)

// ErrClosed is what writing to a stream that is over returns.
var ErrClosed = errors.New("http2: stream closed")

// WriteHeaders sends a response head: status and fields (names in lower
// case, no connection-specific ones); end says no body follows.
func (c *Conn) WriteHeaders(s *Stream, status int, fields []hpack.HeaderField, end bool) error {
	if s.Closed() || c.err != nil {
		return ErrClosed
	}
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	for _, f := range fields {
		c.enc.WriteField(f)
	}
	c.writeBlock(s, end)
	return nil
}

// WriteTrailers ends s with trailer fields.
func (c *Conn) WriteTrailers(s *Stream, fields []hpack.HeaderField) error {
	if s.Closed() || c.err != nil {
		return ErrClosed
	}
	for _, f := range fields {
		c.enc.WriteField(f)
	}
	c.writeBlock(s, true)
	return nil
}

// writeBlock frames the encoded block in c.ebuf as HEADERS and
// CONTINUATIONs no larger than the peer takes.
func (c *Conn) writeBlock(s *Stream, end bool) {
	blk := c.ebuf.Bytes()
	flags := uint8(0)
	if end {
		flags |= flagEndStream
	}
	typ := frameHeaders
	for {
		n := min(len(blk), c.peerMaxFrame)
		f := flags
		if n == len(blk) {
			f |= flagEndHeaders
		}
		c.out = appendHeader(c.buf(), n, typ, f, s.ID)
		c.out = append(c.buf(), blk[:n]...)
		blk = blk[n:]
		typ, flags = frameContinuation, 0
		if len(blk) == 0 {
			break
		}
	}
	c.ebuf.Reset()
	if end {
		c.closeLocal(s)
	}
}

var statuses [600]string

func statusText(code int) string {
	if code >= 100 && code < 600 {
		if statuses[code] == "" {
			statuses[code] = string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
		}
		return statuses[code]
	}
	return "500"
}

// Window is how many body bytes s may send now.
func (c *Conn) Window(s *Stream) int {
	if s.Closed() || c.err != nil {
		return 0
	}
	return int(max(0, min(s.sendWindow, c.sendWindow)))
}

// WriteData sends as much of p as the windows allow, in frames the peer
// takes, and reports how much; end ends the stream with the last byte
// of p (or at once, for an empty p).
func (c *Conn) WriteData(s *Stream, p []byte, end bool) (int, error) {
	return c.WriteDataFunc(s, len(p), end, func(b []byte) error {
		copy(b, p)
		p = p[len(b):]
		return nil
	})
}

// WriteDataFunc is WriteData whose bytes fill writes into the output in
// place, frame by frame, up to n of them: a file is read straight into
// the frames.
func (c *Conn) WriteDataFunc(s *Stream, n int, end bool, fill func([]byte) error) (int, error) {
	if s.Closed() || c.err != nil {
		return 0, ErrClosed
	}
	want := n
	n = min(n, c.Window(s))
	end = end && n == want
	if n == 0 && !end {
		return 0, nil
	}
	sent := 0
	for {
		k := min(n-sent, c.peerMaxFrame)
		flags := uint8(0)
		last := sent+k == n
		if last && end {
			flags = flagEndStream
		}
		at := len(c.out)
		c.out = appendHeader(c.buf(), k, frameData, flags, s.ID)
		c.out = slices.Grow(c.out, k)[:at+frameHeaderLen+k]
		if err := fill(c.out[at+frameHeaderLen:]); err != nil {
			c.out = c.out[:at]
			s.sendWindow -= int64(sent)
			c.sendWindow -= int64(sent)
			return sent, err
		}
		sent += k
		if last {
			break
		}
	}
	s.sendWindow -= int64(sent)
	c.sendWindow -= int64(sent)
	if end {
		c.closeLocal(s)
	}
	return sent, nil
}

// Reset ends s with RST_STREAM code, as the server's choice.
func (c *Conn) Reset(s *Stream, code ErrCode) {
	if s.state == stateClosed || c.err != nil {
		return
	}
	c.out = appendRST(c.buf(), s.ID, code)
	s.state = stateClosed
	c.drop(s)
}

// Release says the driver is done with s: its handler returned. A
// stream counts against max concurrent streams until then, and after, as
// long as its request body still arrives.
func (c *Conn) Release(s *Stream) {
	if s.released {
		return
	}
	s.released = true
	switch s.state {
	case stateOpen, stateHalfClosedRemote:
		// A handler that returned without ending its response.
		c.Reset(s, ErrInternal)
	case stateHalfClosedLocal:
		// The response is whole and the body still arrives: the stream
		// ends when it does (or the driver resets it).
	default:
		c.drop(s)
	}
}
