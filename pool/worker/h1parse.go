package worker

import (
	"bytes"
	"unsafe"

	"github.com/hfork/hfork/pool/worker/app"
)

// The event loop's request parser. It accepts a strict subset of HTTP/1.x:
// a GET or HEAD request head without a body, whose every byte is one it
// understands. Anything else, malformed or merely unusual, is declined
// (parseNotFast) and the connection goes to net/http with the bytes read
// so far, which answers it as it always would: a 400 or 431 for what is
// broken, a full request for what is valid. The parser therefore never
// has to decide what is an error; it only decides what is plain.

type parseResult int

const (
	// parseMore: the head is not complete yet.
	parseMore parseResult = iota
	// parseOK: one plain request head was parsed.
	parseOK
	// parseNotFast: net/http must read this connection from here on.
	parseNotFast
)

// h1Request is one parsed request head. Its strings point into the buffer
// that was parsed: they are valid until the loop reads into it again.
type h1Request struct {
	app.FastRequest
	target    string // the request-target as sent
	minor     int    // HTTP/1.minor: 0 or 1
	host      string
	referer   string
	userAgent string
	// closeReq: the client asked to close (HTTP/1.1 "Connection: close"),
	// or speaks HTTP/1.0 without "Connection: keep-alive".
	closeReq bool
	zeroCL   bool // "Content-Length: 0" was seen
}

func (r *h1Request) proto() string {
	if r.minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// Byte classes of the request-target. A path byte needs no
// percent-encoding (so the path as sent is the decoded path, and its
// escaped form too); a query byte may also be '?', '/' or '%', as the raw
// query keeps escapes as they are. Everything else, '#', spaces, controls,
// non-ASCII, quotes, brackets, goes to net/http.
var pathByte, queryByte, hostByte [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		pathByte[c] = alnum || bytes.IndexByte([]byte("-._~!$&'()*+,;=:@/"), b) >= 0
		queryByte[c] = pathByte[c] || b == '?' || b == '%'
		hostByte[c] = alnum || bytes.IndexByte([]byte("-._~:[]"), b) >= 0
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// str views b as a string without copying; see h1Request.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseH1 parses the request head at the start of b into r. It returns
// the head's length with parseOK.
func parseH1(b []byte, r *h1Request) (int, parseResult) {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		// A bare LF ends lines for net/http but not here.
		for i, c := range b {
			if c == '\n' && (i == 0 || b[i-1] != '\r') {
				return 0, parseNotFast
			}
		}
		return 0, parseMore
	}
	head := b[:end+2] // each line with its CRLF
	*r = h1Request{}

	// Request line: METHOD SP target SP HTTP/1.x
	nl := bytes.IndexByte(head, '\n')
	if nl < 1 || head[nl-1] != '\r' {
		return 0, parseNotFast
	}
	line := head[:nl-1]
	head = head[nl+1:]
	var rest []byte
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		r.Method, rest = "GET", line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		r.Method, rest = "HEAD", line[5:]
	default:
		return 0, parseNotFast
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 || rest[0] != '/' {
		return 0, parseNotFast
	}
	target, version := rest[:sp], rest[sp+1:]
	switch str(version) {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
	default:
		return 0, parseNotFast
	}
	q := len(target)
	for i, c := range target {
		if c == '?' {
			q = i
			break
		}
		if !pathByte[c] {
			return 0, parseNotFast
		}
	}
	for _, c := range target[q:] {
		if !queryByte[c] {
			return 0, parseNotFast
		}
	}
	r.target = str(target)
	r.Path = str(target[:q])
	if q < len(target) {
		r.Query = str(target[q+1:])
	}

	hosts := 0
	keepAlive := false
	forwardable := r.minor == 1
	for len(head) > 0 {
		nl := bytes.IndexByte(head, '\n')
		if nl < 1 || head[nl-1] != '\r' {
			return 0, parseNotFast
		}
		line := head[:nl-1]
		head = head[nl+1:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			// Also a continuation line (obs-fold), which starts with a space.
			return 0, parseNotFast
		}
		name := line[:colon]
		for _, c := range name {
			if !tokenByte[c] {
				return 0, parseNotFast
			}
		}
		v := line[colon+1:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		for _, c := range v {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return 0, parseNotFast
			}
		}
		switch len(name) {
		case 2:
			if lowerIs(name, "te") {
				forwardable = false
			}
		case 4:
			if lowerIs(name, "host") {
				hosts++
				if hosts > 1 || len(v) == 0 {
					return 0, parseNotFast
				}
				for _, c := range v {
					if !hostByte[c] {
						return 0, parseNotFast
					}
				}
				r.host = str(v)
			}
		case 5:
			if lowerIs(name, "range") {
				r.Conditional = true
			}
		case 6:
			if lowerIs(name, "expect") {
				return 0, parseNotFast
			}
		case 7:
			switch {
			case lowerIs(name, "upgrade"), lowerIs(name, "trailer"):
				return 0, parseNotFast
			case lowerIs(name, "referer"):
				if r.referer == "" {
					r.referer = str(v)
				}
			}
		case 10:
			switch {
			case lowerIs(name, "connection"):
				for len(v) > 0 {
					tok := v
					if i := bytes.IndexByte(v, ','); i >= 0 {
						tok, v = v[:i], v[i+1:]
					} else {
						v = nil
					}
					tok = bytes.Trim(tok, " \t")
					switch {
					case lowerIs(tok, "close"):
						r.closeReq = true
					case lowerIs(tok, "keep-alive"):
						keepAlive = true
					case len(tok) > 0:
						// It names a header to drop on the way.
						forwardable = false
					}
				}
			case lowerIs(name, "user-agent"):
				if r.userAgent == "" {
					r.userAgent = str(v)
				}
			}
		case 14:
			// A body, even an empty one announced twice, is net/http's.
			if lowerIs(name, "content-length") {
				if r.zeroCL || str(v) != "0" {
					return 0, parseNotFast
				}
				r.zeroCL = true
			}
		case 17:
			if lowerIs(name, "transfer-encoding") {
				return 0, parseNotFast
			}
		}
		if len(name) > 3 && lowerIs(name[:3], "if-") {
			r.Conditional = true
		}
	}
	if r.minor == 1 && hosts == 0 {
		// net/http answers 400: HTTP/1.1 requires Host.
		return 0, parseNotFast
	}
	if r.minor == 0 && !keepAlive {
		r.closeReq = true
	}
	r.Forwardable = forwardable
	return end + 4, parseOK
}

// lowerIs reports whether b equals the lower-case ASCII s, ignoring case.
func lowerIs(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

var tokenByte [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		tokenByte[c] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
	}
}
