package h2

import "testing"

func TestFrameHeaderRoundTrip(t *testing.T) {
	for _, h := range []header{
		{length: 0, typ: frameSettings, flags: flagAck, stream: 0},
		{length: maxFrameSize, typ: frameData, flags: flagEndStream | flagPadded, stream: 1<<31 - 1},
		{length: 16384, typ: frameHeaders, flags: flagEndHeaders | flagPriority, stream: 7},
	} {
		b := appendHeader(nil, int(h.length), h.typ, h.flags, h.stream)
		if len(b) != frameHeaderLen {
			t.Fatalf("%d header bytes", len(b))
		}
		if got := parseHeader(b); got != h {
			t.Errorf("parse(append(%+v)) = %+v", h, got)
		}
	}
	// The reserved bit of the stream id is ignored.
	b := appendHeader(nil, 0, frameData, 0, 3)
	b[5] |= 0x80
	if got := parseHeader(b).stream; got != 3 {
		t.Errorf("stream with the reserved bit: %d", got)
	}
}

func TestErrCodeString(t *testing.T) {
	for code, want := range map[ErrCode]string{ErrNo: "NO_ERROR", ErrEnhanceYourCalm: "ENHANCE_YOUR_CALM", ErrHTTP11Required: "HTTP_1_1_REQUIRED", 0xff: "ErrCode(0xff)"} {
		if got := code.String(); got != want {
			t.Errorf("%d: %q, want %q", uint32(code), got, want)
		}
	}
}
