package h2

import (
	"encoding/binary"
	"fmt"
)

// ErrCode is an HTTP/2 error code (RFC 9113 section 7).
type ErrCode uint32

// The error codes.
const (
	ErrNo               ErrCode = 0x0
	ErrProtocol         ErrCode = 0x1
	ErrInternal         ErrCode = 0x2
	ErrFlowControl      ErrCode = 0x3
	ErrSettingsTimeout  ErrCode = 0x4
	ErrStreamClosed     ErrCode = 0x5
	ErrFrameSize        ErrCode = 0x6
	ErrRefusedStream    ErrCode = 0x7
	ErrCancel           ErrCode = 0x8
	ErrCompression      ErrCode = 0x9
	ErrConnect          ErrCode = 0xa
	ErrEnhanceYourCalm  ErrCode = 0xb
	ErrInadequateSecure ErrCode = 0xc
	ErrHTTP11Required   ErrCode = 0xd
)

var codeNames = [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
	"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}

func (c ErrCode) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("ErrCode(%#x)", uint32(c))
}

// ConnError is what Feed returns once the connection is over: GOAWAY with
// Code is queued in the output, and the driver writes it and closes.
type ConnError struct {
	Code   ErrCode
	Reason string
}

func (e *ConnError) Error() string {
	return "http2 connection error " + e.Code.String() + ": " + e.Reason
}

type frameType uint8

const (
	frameData         frameType = 0x0
	frameHeaders      frameType = 0x1
	framePriority     frameType = 0x2
	frameRSTStream    frameType = 0x3
	frameSettings     frameType = 0x4
	framePushPromise  frameType = 0x5
	framePing         frameType = 0x6
	frameGoAway       frameType = 0x7
	frameWindowUpdate frameType = 0x8
	frameContinuation frameType = 0x9
)

const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

const (
	settingHeaderTableSize   = 0x1
	settingEnablePush        = 0x2
	settingMaxConcurrent     = 0x3
	settingInitialWindowSize = 0x4
	settingMaxFrameSize      = 0x5
	settingMaxHeaderListSize = 0x6
)

const (
	frameHeaderLen   = 9
	defaultFrameSize = 16384
	maxFrameSize     = 1<<24 - 1
	maxWindow        = 1<<31 - 1
	defaultWindow    = 65535
)

// Preface is what a client sends first.
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// header is a frame's fixed 9 bytes.
type header struct {
	length uint32
	typ    frameType
	flags  uint8
	stream uint32
}

func parseHeader(b []byte) header {
	return header{
		length: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:    frameType(b[3]),
		flags:  b[4],
		stream: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
	}
}

func appendHeader(b []byte, length int, typ frameType, flags uint8, stream uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(typ), flags,
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

func appendU32(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(b, v)
}

func appendWindowUpdate(b []byte, stream, inc uint32) []byte {
	return appendU32(appendHeader(b, 4, frameWindowUpdate, 0, stream), inc)
}

func appendRST(b []byte, stream uint32, code ErrCode) []byte {
	return appendU32(appendHeader(b, 4, frameRSTStream, 0, stream), uint32(code))
}

func appendGoAway(b []byte, last uint32, code ErrCode, debug string) []byte {
	b = appendHeader(b, 8+len(debug), frameGoAway, 0, 0)
	b = appendU32(b, last)
	b = appendU32(b, uint32(code))
	return append(b, debug...)
}

type setting struct {
	id  uint16
	val uint32
}

func appendSettings(b []byte, ss ...setting) []byte {
	b = appendHeader(b, 6*len(ss), frameSettings, 0, 0)
	for _, s := range ss {
		b = binary.BigEndian.AppendUint16(b, s.id)
		b = appendU32(b, s.val)
	}
	return b
}
