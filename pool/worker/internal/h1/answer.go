package h1

import (
	"bytes"
	"strconv"

	"github.com/hfork/hfork/pool/worker/app"
)

// Answer is a parsed answer head from an upstream.
type Answer struct {
	Code    int
	Minor   int
	Length  int64 // -1: none
	Chunked bool
	Keep    bool // the connection may serve another request
	HasDate bool
	// Policy, set by the caller, is the route's header policy for the
	// client's copy of a final answer.
	Policy *app.HeaderPolicy
	drop   [][]byte // headers the Connection header names
}

// ParseAnswer parses the answer head at the start of b, with lines ending
// in CRLF or LF as net/http's transport accepts them. n is 0 while the
// head is incomplete.
func ParseAnswer(b []byte) (h Answer, n int, err error) {
	h.Length = -1
	i := 0
	line := func() ([]byte, bool) {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return nil, false
		}
		ln := b[i : i+j]
		i += j + 1
		if len(ln) > 0 && ln[len(ln)-1] == '\r' {
			ln = ln[:len(ln)-1]
		}
		return ln, true
	}
	status, ok := line()
	if !ok {
		return h, 0, nil
	}
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || (status[7] != '0' && status[7] != '1') || status[8] != ' ' {
		return h, 0, ErrMalformedAnswer
	}
	h.Minor = int(status[7] - '0')
	code, cerr := strconv.Atoi(string(status[9:12]))
	if cerr != nil || code < 100 || code > 999 || len(status) > 12 && status[12] != ' ' {
		return h, 0, ErrMalformedAnswer
	}
	h.Code = code
	h.Keep = h.Minor == 1
	for {
		ln, ok := line()
		if !ok {
			return h, 0, nil
		}
		if len(ln) == 0 {
			break
		}
		colon := bytes.IndexByte(ln, ':')
		if colon <= 0 {
			return h, 0, ErrMalformedAnswer
		}
		name, v := ln[:colon], bytes.Trim(ln[colon+1:], " \t")
		// As net/http's transport: a header it would not parse makes the
		// answer a 502, never bytes passed on to the client.
		for _, c := range name {
			if !tokenByte[c] {
				return h, 0, ErrMalformedAnswer
			}
		}
		for _, c := range v {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return h, 0, ErrMalformedAnswer
			}
		}
		switch {
		case LowerIs(name, "content-length"):
			cl, perr := strconv.ParseInt(string(v), 10, 64)
			if perr != nil || cl < 0 || h.Length >= 0 && h.Length != cl {
				return h, 0, ErrMalformedAnswer
			}
			h.Length = cl
		case LowerIs(name, "transfer-encoding"):
			if !LowerIs(v, "chunked") {
				return h, 0, ErrMalformedAnswer
			}
			h.Chunked = true
		case LowerIs(name, "connection"):
			for _, tok := range bytes.Split(v, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case LowerIs(tok, "close"):
					h.Keep = false
				case LowerIs(tok, "keep-alive"):
					if h.Minor == 0 {
						h.Keep = true
					}
				case len(tok) > 0:
					h.drop = append(h.drop, tok)
				}
			}
		case LowerIs(name, "date"):
			h.HasDate = true
		}
	}
	if h.Minor == 0 && h.Length < 0 {
		h.Keep = false
	}
	return h, i, nil
}

// Error is what the codec finds wrong with an upstream's answer.
type Error string

func (e Error) Error() string { return string(e) }

// ErrMalformedAnswer is an answer head net/http's transport would refuse.
const ErrMalformedAnswer = Error("malformed HTTP answer from the upstream")

// AppendAnswerHead writes the client's head for an upstream answer h whose
// raw head is raw: net/http's status line, the upstream's headers less the
// hop-by-hop ones, date if the upstream gave none, and the framing (see
// EndHead). An interim answer (1xx) ends after its headers.
func AppendAnswerHead(b []byte, h *Answer, raw, date []byte, conn Conn, interim bool) []byte {
	b = app.AppendStatusLine(b, h.Code)
	lines := raw[bytes.IndexByte(raw, '\n')+1:]
	// What the route's Vary depends on, as the lines go by.
	var ctype []byte
	encoded, ranged, varyAE := false, false, false
	for {
		nl := bytes.IndexByte(lines, '\n')
		ln := lines[:nl]
		lines = lines[nl+1:]
		if len(ln) > 0 && ln[len(ln)-1] == '\r' {
			ln = ln[:len(ln)-1]
		}
		if len(ln) == 0 {
			break
		}
		colon := bytes.IndexByte(ln, ':')
		name, v := ln[:colon], bytes.Trim(ln[colon+1:], " \t")
		switch {
		case LowerIs(name, "content-type"):
			ctype = v
		case LowerIs(name, "content-encoding"):
			encoded = encoded || len(v) > 0
		case LowerIs(name, "content-range"):
			ranged = ranged || len(v) > 0
		case LowerIs(name, "vary"):
			varyAE = varyAE || varies(v)
		}
		if !interim && h.Policy.Replaces(name) {
			continue
		}
		if dropAnswer(name, h.drop) || h.Chunked && LowerIs(name, "content-length") {
			// With chunked framing a Content-Length is void (RFC 9112
			// 6.3); net/http drops it too.
			continue
		}
		b = AppendCanonical(b, name)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	if interim {
		return append(b, "\r\n"...)
	}
	length := h.Length
	if h.Chunked {
		length = -1
	}
	b = h.Policy.AppendVary(b, h.Code, Str(ctype), encoded, ranged, length, varyAE)
	b = h.Policy.AppendLines(b)
	if h.HasDate {
		date = nil
	}
	return EndHead(b, date, h.Chunked, conn)
}

func dropAnswer(name []byte, named [][]byte) bool {
	switch len(name) {
	case 2:
		if LowerIs(name, "te") {
			return true
		}
	case 7:
		if LowerIs(name, "trailer") || LowerIs(name, "upgrade") {
			return true
		}
	case 10:
		if LowerIs(name, "connection") || LowerIs(name, "keep-alive") {
			return true
		}
	case 16:
		if LowerIs(name, "proxy-connection") {
			return true
		}
	case 17:
		if LowerIs(name, "transfer-encoding") {
			return true
		}
	case 18:
		if LowerIs(name, "proxy-authenticate") {
			return true
		}
	case 19:
		if LowerIs(name, "proxy-authorization") {
			return true
		}
	}
	for _, d := range named {
		if bytes.EqualFold(name, d) {
			return true
		}
	}
	return false
}

// varies reports whether a Vary value names Accept-Encoding or "*".
func varies(v []byte) bool {
	for _, tok := range bytes.Split(v, []byte(",")) {
		tok = bytes.Trim(tok, " \t")
		if LowerIs(tok, "accept-encoding") || len(tok) == 1 && tok[0] == '*' {
			return true
		}
	}
	return false
}
