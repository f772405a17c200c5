package h1

import "time"

// Every response head the loop writes, its own answers, its proxy's
// errors and an upstream's answers, ends through EndHead, so the framing
// rules live in one place.

// Conn is what a head's Connection header says.
type Conn int

const (
	ConnNone      Conn = iota // no Connection header
	ConnClose                 // "Connection: close"
	ConnKeepAlive             // "Connection: keep-alive"
)

func (c Conn) String() string {
	switch c {
	case ConnNone:
		return "none"
	case ConnClose:
		return "close"
	case ConnKeepAlive:
		return "keep-alive"
	}
	return "Conn(?)"
}

// Framing is the Connection header net/http writes for a request of
// HTTP/1.minor: an HTTP/1.0 request gets "Connection: keep-alive" when
// the connection stays open and nothing when it closes; an HTTP/1.1 one
// "Connection: close" when it closes. A draining server says close to
// every request, as the worker's handler does.
func Framing(minor int, closing, draining bool) Conn {
	switch {
	case draining || closing && minor == 1:
		return ConnClose
	case !closing && minor == 0:
		return ConnKeepAlive
	}
	return ConnNone
}

// AppendHead appends head, a status line and header lines each ending in
// CRLF as an HTTP/1.1 server writes them, with the status line's version
// set to the request's HTTP/1.minor, as net/http answers.
func AppendHead(b, head []byte, minor int) []byte {
	const v11 = "HTTP/1.1"
	if minor == 0 && len(head) >= len(v11) {
		b = append(b, "HTTP/1.0"...)
		return append(b, head[len(v11):]...)
	}
	return append(b, head...)
}

// EndHead ends a head: the Date line (date, already formatted with its
// CRLF; nil when the head has one), "Transfer-Encoding: chunked" for a
// chunked body, the Connection header and the blank line.
func EndHead(b, date []byte, chunked bool, conn Conn) []byte {
	b = append(b, date...)
	if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch conn {
	case ConnClose:
		b = append(b, "Connection: close\r\n"...)
	case ConnKeepAlive:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}

// AppendDate appends the Date line for unix second sec.
func AppendDate(b []byte, sec int64) []byte {
	b = append(b, "Date: "...)
	b = time.Unix(sec, 0).UTC().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 GMT")
	return append(b, "\r\n"...)
}
