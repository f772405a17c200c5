package h2

import "encoding/binary"

// The frames that steer the connection rather than carry a request:
// PRIORITY, RST_STREAM, SETTINGS, PING and WINDOW_UPDATE.

func (c *Conn) onPriority(h header, p []byte) {
	if h.stream == 0 {
		c.fail(ErrProtocol, "PRIORITY on stream 0")
		return
	}
	if len(p) != 5 {
		c.resetStream(h.stream, ErrFrameSize)
		return
	}
	if binary.BigEndian.Uint32(p)&(1<<31-1) == h.stream {
		c.resetStream(h.stream, ErrProtocol)
	}
}

func (c *Conn) onRST(h header, p []byte) {
	if h.stream == 0 {
		c.fail(ErrProtocol, "RST_STREAM on stream 0")
		return
	}
	if len(p) != 4 {
		c.fail(ErrFrameSize, "RST_STREAM of the wrong size")
		return
	}
	if c.idle(h.stream) {
		c.fail(ErrProtocol, "RST_STREAM on an idle stream")
		return
	}
	s := c.streams[h.stream]
	if s == nil || s.state == stateClosed {
		return
	}
	if s.state != stateHalfClosedLocal {
		// Reset before its response ended: the work was for nothing.
		c.resetDebt++
		if c.resetDebt > c.cfg.MaxResets {
			c.fail(ErrEnhanceYourCalm, "too many streams reset")
			return
		}
	}
	s.state = stateClosed
	c.evs = append(c.evs, Event{Kind: EvReset, Stream: s, Code: ErrCode(binary.BigEndian.Uint32(p))})
	c.drop(s)
}

func (c *Conn) onSettings(h header, p []byte) {
	if h.stream != 0 {
		c.fail(ErrProtocol, "SETTINGS on a stream")
		return
	}
	if h.flags&flagAck != 0 {
		if len(p) != 0 {
			c.fail(ErrFrameSize, "SETTINGS ACK with a payload")
			return
		}
		// An ACK beyond those owed is let pass: the RFC names no error
		// for it.
		c.unackedSettings = max(c.unackedSettings-1, 0)
		return
	}
	if len(p)%6 != 0 {
		c.fail(ErrFrameSize, "SETTINGS of the wrong size")
		return
	}
	c.sett = true
	for ; len(p) > 0; p = p[6:] {
		id, v := binary.BigEndian.Uint16(p), binary.BigEndian.Uint32(p[2:])
		switch id {
		case settingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(min(v, 4096))
		case settingEnablePush:
			if v > 1 {
				c.fail(ErrProtocol, "SETTINGS_ENABLE_PUSH not 0 or 1")
				return
			}
		case settingInitialWindowSize:
			if v > maxWindow {
				c.fail(ErrFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
				return
			}
			delta := int64(v) - c.peerWindow
			c.peerWindow = int64(v)
			for _, s := range c.streams {
				s.sendWindow += delta
				if s.sendWindow > maxWindow {
					c.fail(ErrFlowControl, "a stream window above 2^31-1")
					return
				}
			}
			if delta > 0 {
				c.evs = append(c.evs, Event{Kind: EvWindow})
			}
		case settingMaxFrameSize:
			if v < defaultFrameSize || v > maxFrameSize {
				c.fail(ErrProtocol, "SETTINGS_MAX_FRAME_SIZE out of range")
				return
			}
			c.peerMaxFrame = int(v)
		}
	}
	c.out = appendHeader(c.buf(), 0, frameSettings, flagAck, 0)
}

func (c *Conn) onPing(h header, p []byte) {
	if h.stream != 0 {
		c.fail(ErrProtocol, "PING on a stream")
		return
	}
	if len(p) != 8 {
		c.fail(ErrFrameSize, "PING of the wrong size")
		return
	}
	if h.flags&flagAck != 0 {
		return
	}
	c.out = append(appendHeader(c.buf(), 8, framePing, flagAck, 0), p...)
}

func (c *Conn) onWindowUpdate(h header, p []byte) {
	if len(p) != 4 {
		c.fail(ErrFrameSize, "WINDOW_UPDATE of the wrong size")
		return
	}
	inc := int64(binary.BigEndian.Uint32(p) & (1<<31 - 1))
	if h.stream == 0 {
		if inc == 0 {
			c.fail(ErrProtocol, "WINDOW_UPDATE of 0")
			return
		}
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			c.fail(ErrFlowControl, "connection window above 2^31-1")
			return
		}
		c.evs = append(c.evs, Event{Kind: EvWindow})
		return
	}
	if c.idle(h.stream) {
		c.fail(ErrProtocol, "WINDOW_UPDATE on an idle stream")
		return
	}
	s := c.streams[h.stream]
	if s == nil || s.state == stateClosed {
		return
	}
	if inc == 0 {
		c.resetStream(s.ID, ErrProtocol)
		return
	}
	s.sendWindow += inc
	if s.sendWindow > maxWindow {
		c.resetStream(s.ID, ErrFlowControl)
		return
	}
	c.evs = append(c.evs, Event{Kind: EvWindow, Stream: s})
}
