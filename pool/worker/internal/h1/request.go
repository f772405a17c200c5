package h1

import (
	"bytes"
	"strconv"
	"unsafe"

	"github.com/hfork/hfork/pool/worker/app"
)

// The request parser. It accepts a strict subset of HTTP/1.x:
// a GET or HEAD request head without a body, whose every byte is one it
// understands. Anything else, malformed or merely unusual, is declined
// (NotFast) and the connection goes to net/http with the bytes read
// so far, which answers it as it always would: a 400 or 431 for what is
// broken, a full request for what is valid. The parser therefore never
// has to decide what is an error; it only decides what is plain.

// Result is what Parse made of the bytes.
type Result int

const (
	// More: the head is not complete yet.
	More Result = iota
	// OK: one plain request head was parsed.
	OK
	// NotFast: net/http must read this connection from here on.
	NotFast
)

func (r Result) String() string {
	switch r {
	case More:
		return "more"
	case OK:
		return "ok"
	case NotFast:
		return "not-fast"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Request is one parsed request head. Its strings point into the buffer
// that was parsed: they are valid until the caller reads into it again.
type Request struct {
	app.FastRequest
	Target    string // the request-target as sent
	Minor     int    // HTTP/1.minor: 0 or 1
	Host      string // also in FastRequest.Host
	Referer   string
	UserAgent string
	XFF       string // X-Forwarded-For (one line at most: more is net/http's)
	RequestID string // X-Request-ID
	// Close: the client asked to close (HTTP/1.1 "Connection: close"),
	// or speaks HTTP/1.0 without "Connection: keep-alive".
	Close  bool
	zeroCL bool // "Content-Length: 0" was seen
}

// Proto is the request's protocol as net/http spells it.
func (r *Request) Proto() string {
	if r.Minor == 0 {
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

// Str views b as a string without copying: it is valid as long as b's
// bytes are not written (see Request).
func Str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Parse parses the request head at the start of b into r. It returns the
// head's length with OK.
func Parse(b []byte, r *Request) (int, Result) {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		// A bare LF ends lines for net/http but not here.
		for i, c := range b {
			if c == '\n' && (i == 0 || b[i-1] != '\r') {
				return 0, NotFast
			}
		}
		return 0, More
	}
	head := b[:end+2] // each line with its CRLF
	*r = Request{}

	// Request line: METHOD SP target SP HTTP/1.x
	nl := bytes.IndexByte(head, '\n')
	if nl < 1 || head[nl-1] != '\r' {
		return 0, NotFast
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
		return 0, NotFast
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 || rest[0] != '/' {
		return 0, NotFast
	}
	target, version := rest[:sp], rest[sp+1:]
	switch Str(version) {
	case "HTTP/1.1":
		r.Minor = 1
	case "HTTP/1.0":
		r.Minor = 0
	default:
		return 0, NotFast
	}
	q := len(target)
	for i, c := range target {
		if c == '?' {
			q = i
			break
		}
		if !pathByte[c] {
			return 0, NotFast
		}
	}
	for _, c := range target[q:] {
		if !queryByte[c] {
			return 0, NotFast
		}
	}
	r.Target = Str(target)
	r.Path = Str(target[:q])
	if q < len(target) {
		r.Query = Str(target[q+1:])
	}

	hosts := 0
	keepAlive := false
	forwardable := r.Minor == 1
	for len(head) > 0 {
		nl := bytes.IndexByte(head, '\n')
		if nl < 1 || head[nl-1] != '\r' {
			return 0, NotFast
		}
		line := head[:nl-1]
		head = head[nl+1:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			// Also a continuation line (obs-fold), which starts with a space.
			return 0, NotFast
		}
		name := line[:colon]
		for _, c := range name {
			if !tokenByte[c] {
				return 0, NotFast
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
				return 0, NotFast
			}
		}
		switch len(name) {
		case 2:
			if LowerIs(name, "te") {
				forwardable = false
			}
		case 4:
			if LowerIs(name, "host") {
				hosts++
				if hosts > 1 || len(v) == 0 {
					return 0, NotFast
				}
				for _, c := range v {
					if !hostByte[c] {
						return 0, NotFast
					}
				}
				r.Host = Str(v)
			}
		case 5:
			if LowerIs(name, "range") {
				r.Conditional = true
			}
		case 6:
			if LowerIs(name, "expect") {
				return 0, NotFast
			}
		case 7:
			switch {
			case LowerIs(name, "upgrade"), LowerIs(name, "trailer"):
				return 0, NotFast
			case LowerIs(name, "referer"):
				if r.Referer == "" {
					r.Referer = Str(v)
				}
			}
		case 10:
			switch {
			case LowerIs(name, "connection"):
				for len(v) > 0 {
					tok := v
					if i := bytes.IndexByte(v, ','); i >= 0 {
						tok, v = v[:i], v[i+1:]
					} else {
						v = nil
					}
					tok = bytes.Trim(tok, " \t")
					switch {
					case LowerIs(tok, "close"):
						r.Close = true
					case LowerIs(tok, "keep-alive"):
						keepAlive = true
					case len(tok) > 0:
						// It names a header to drop on the way.
						forwardable = false
					}
				}
			case LowerIs(name, "user-agent"):
				if r.UserAgent == "" {
					r.UserAgent = Str(v)
				}
			}
		case 12:
			if LowerIs(name, "x-request-id") && r.RequestID == "" {
				r.RequestID = Str(v)
			}
		case 15:
			switch {
			case LowerIs(name, "x-forwarded-for"):
				if r.XFF != "" {
					return 0, NotFast
				}
				r.XFF = Str(v)
			case LowerIs(name, "accept-encoding"):
				if r.AcceptEncoding != "" {
					// Two lines are one list to net/http; rare enough
					// to leave to it.
					return 0, NotFast
				}
				r.AcceptEncoding = Str(v)
			}
		case 14:
			// A body, even an empty one announced twice, is net/http's.
			if LowerIs(name, "content-length") {
				if r.zeroCL || Str(v) != "0" {
					return 0, NotFast
				}
				r.zeroCL = true
			}
		case 17:
			if LowerIs(name, "transfer-encoding") {
				return 0, NotFast
			}
		}
		if len(name) > 3 && LowerIs(name[:3], "if-") {
			r.Conditional = true
		}
	}
	if r.Minor == 1 && hosts == 0 {
		// net/http answers 400: HTTP/1.1 requires Host.
		return 0, NotFast
	}
	if r.Minor == 0 && !keepAlive {
		r.Close = true
	}
	r.Forwardable = forwardable
	r.FastRequest.Host = r.Host // the routes pick a host by it
	return end + 4, OK
}

// LowerIs reports whether b equals the lower-case ASCII s, ignoring case.
func LowerIs(b []byte, s string) bool {
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
