package worker

import (
	"bytes"
	"cmp"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/h1"
)

// Strict framing where net/http serves. Go's net/http accepts what RFC
// 9112 says a server must refuse: Content-Length together with
// Transfer-Encoding (it drops the length and keeps the connection, open
// to a smuggled second request), obs-folded and duplicate framing
// headers; and it passes header names with underscores on, which CGI and
// WSGI map onto the names with dashes. So every plain-HTTP connection
// net/http serves, accepted or handed over by the event loop, reads
// through a framer: it follows the connection request by request (the
// head, then the body by its Content-Length or its chunks) and checks
// each head whole before net/http sees a byte of it. A head it refuses
// never reaches net/http: net/http reads instead a request the worker
// answers with the refusal's status and a close (see rejectHead), so the
// answer still comes after the answers to the requests before it.
//
// A TLS connection's bytes are decrypted above the trackedConn, so an
// HTTP/1 TLS connection gets its framer above its *tls.Conn
// (tlsframe.go); HTTP/2 has its own framing.

// framerState is where a framer is in the request stream.
type framerState int

const (
	frHead    framerState = iota // reading a request head
	frLength                     // passing a body of Content-Length bytes
	frChunked                    // passing a chunked body
	frRaw                        // passing everything: hijacked, or a body net/http will refuse
	frRefused                    // a head was refused: the stream ends
)

// framer checks the request heads of one connection (see above).
type framer struct {
	state      framerState
	in         []byte // read, not yet passed on
	out        []byte // checked, for the reader
	left       int64  // frLength: body bytes to come
	chunks     h1.ChunkScanner
	maxHead    int
	underscore bool          // keep header names with an underscore
	refused    *atomic.Int32 // set to the status of a refused head
}

// newFramer is the framer of a plain-HTTP connection of w's; refused is
// where it says that it refused a head.
func (w *worker) newFramer(refused *atomic.Int32) *framer {
	return &framer{maxHead: cmp.Or(w.cfg.MaxHeaderBytes, fallbackMaxHeaderBytes), underscore: w.cfg.UnderscoresInHeaders, refused: refused}
}

// rejectHead is the request net/http reads in place of a refused head:
// valid, so net/http hands it to the worker, which answers the refusal
// (worker.ServeHTTP); "Connection: close" makes net/http close after.
// Its Host tells it from the requests before it: net/http's read-ahead
// can refuse the next head while one of those is still to be served.
const (
	rejectHost = "hfork.invalid"
	rejectHead = "GET / HTTP/1.1\r\nHost: " + rejectHost + "\r\nConnection: close\r\n\r\n"
)

// read fills p from the connection through src, the connection's read.
func (f *framer) read(src func([]byte) (int, error), p []byte) (int, error) {
	for len(f.out) == 0 {
		switch {
		case f.state == frRefused:
			return 0, io.EOF
		case f.state == frRaw && len(f.in) == 0:
			return src(p)
		case f.state == frLength && len(f.in) == 0:
			n, err := src(p[:min(int64(len(p)), f.left)])
			if f.left -= int64(n); f.left == 0 {
				f.state = frHead
			}
			return n, err
		case f.state == frChunked && len(f.in) == 0:
			n, err := src(p)
			k := f.chunk(p[:n])
			f.in = append(f.in, p[k:n]...) // the next request's
			if k > 0 || err != nil {
				return k, err
			}
			continue
		}
		if f.step() {
			continue
		}
		// The head is incomplete: read more, through p (the reader's own
		// buffer: a buffer here would escape to the heap on every read).
		n, err := src(p)
		f.in = append(f.in, p[:n]...)
		if n == 0 && err != nil {
			if len(f.in) > 0 && err == io.EOF {
				// A head cut short: net/http says what it says.
				f.out, f.in, f.state = f.in, nil, frRaw
				continue
			}
			return 0, err
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	if len(f.out) == 0 {
		f.out = nil
	}
	return n, nil
}

// chunk follows a chunked body over b and returns how much of b is body;
// at its end, the next head follows.
func (f *framer) chunk(b []byte) int {
	n, _, end, err := f.chunks.Scan(b)
	switch {
	case err != nil:
		// net/http refuses the body too and closes the connection.
		f.state = frRaw
		return len(b)
	case end:
		f.state = frHead
	}
	return n
}

// step moves what it can of f.in to f.out and reports whether it did.
func (f *framer) step() bool {
	switch f.state {
	case frRaw:
		f.out, f.in = f.in, nil
		return true
	case frLength:
		n := min(int64(len(f.in)), f.left)
		f.out = append(f.out, f.in[:n]...)
		f.in = f.in[n:]
		if f.left -= n; f.left == 0 {
			f.state = frHead
		}
		return n > 0
	case frChunked:
		n := f.chunk(f.in)
		f.out = append(f.out, f.in[:n]...)
		f.in = f.in[n:]
		return n > 0
	}
	// frHead. Empty lines before a request pass as they are.
	i := 0
	for i < len(f.in) && (f.in[i] == '\r' || f.in[i] == '\n') {
		i++
	}
	if i > 0 {
		f.out = append(f.out, f.in[:i]...)
		f.in = f.in[i:]
		return true
	}
	end := headEnd(f.in)
	if end < 0 {
		if len(f.in) > f.maxHead {
			f.refuse(431)
			return true
		}
		if line, _, ok := bytes.Cut(f.in, []byte("\n")); ok && !bytes.Contains(line, []byte(" HTTP/")) {
			// HTTP/0.9, or no request line at all: no head follows.
			f.refuse(400)
			return true
		}
		return false
	}
	if end > f.maxHead {
		f.refuse(431)
		return true
	}
	head, status := checkHead(f.in[:end], f.underscore)
	if status != 0 {
		f.refuse(status)
		return true
	}
	f.out = append(f.out, head.bytes...)
	f.in = f.in[end:]
	switch {
	case head.chunked:
		f.state, f.chunks = frChunked, h1.ChunkScanner{}
	case head.length > 0:
		f.state, f.left = frLength, head.length
	}
	return true
}

// refuse ends the stream with status's stand-in request.
func (f *framer) refuse(status int) {
	f.refused.Store(int32(status))
	f.state = frRefused
	f.out, f.in = []byte(rejectHead), nil
}

// headEnd is the length of the head at the start of b, through its empty
// line, or -1 while it is incomplete. Bare LF line ends count, as they do
// for net/http.
func headEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// checkedHead is a head that passed checkHead.
type checkedHead struct {
	bytes   []byte // the head to pass on: the original, or one without dropped lines
	chunked bool
	length  int64 // Content-Length; 0 when absent
}

// checkHead checks one request head (through its empty line) against
// RFC 9112's framing rules and returns it, without the header lines
// whose names have an underscore unless underscore, or the status that
// refuses it: 400 for Content-Length with Transfer-Encoding, a
// Transfer-Encoding other than "chunked", a duplicate or malformed
// Content-Length or Transfer-Encoding, an obs-folded line, or white space
// before a colon.
func checkHead(b []byte, underscore bool) (checkedHead, int) {
	h := checkedHead{bytes: b}
	var lengths, codings int
	var rebuilt []byte
	pos := 0
	first := true
	for pos < len(b) {
		nl := bytes.IndexByte(b[pos:], '\n')
		lineEnd := pos + nl + 1
		line := bytes.TrimSuffix(b[pos:lineEnd-1], []byte("\r"))
		start := pos
		pos = lineEnd
		if first || len(line) == 0 {
			first = false
			if rebuilt != nil {
				rebuilt = append(rebuilt, b[start:lineEnd]...)
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, 400 // obs-fold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, 400
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		if bytes.ContainsAny(name, " \t") {
			return h, 400
		}
		if !underscore && bytes.IndexByte(name, '_') >= 0 {
			if rebuilt == nil {
				rebuilt = append([]byte(nil), b[:start]...)
			}
			continue
		}
		if rebuilt != nil {
			rebuilt = append(rebuilt, b[start:lineEnd]...)
		}
		switch {
		case asciiEqualFold(name, "Content-Length"):
			lengths++
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || len(value) == 0 || value[0] == '+' {
				return h, 400
			}
			h.length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			codings++
			if !asciiEqualFold(value, "chunked") {
				return h, 400
			}
			h.chunked = true
		}
	}
	if lengths > 1 || codings > 1 || lengths > 0 && codings > 0 {
		return h, 400
	}
	if rebuilt != nil {
		h.bytes = rebuilt
	}
	return h, 0
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// refuseHead answers the stand-in request of a refused head, and closes.
func refuseHead(rw http.ResponseWriter, status int) {
	body := strconv.Itoa(status) + " " + strings.ToLower(http.StatusText(status)) + "\n"
	h := rw.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(status)
	io.WriteString(rw, body)
}

// refusedLinger bounds how long a connection whose head was refused reads
// what the client still sends after the answer: a close with unread
// bytes would reset the connection, and the reset can destroy the answer.
const refusedLinger = 500 * time.Millisecond

// lingerClose shuts nc's write side and reads until the client closes or
// refusedLinger passes.
func lingerClose(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		nc.SetReadDeadline(time.Now().Add(refusedLinger))
		var buf [4096]byte
		for {
			if _, err := nc.Read(buf[:]); err != nil {
				break
			}
		}
	}
}
