package app

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// Request buffering, nginx's proxy_request_buffering: a proxied request's
// body is read whole before any upstream is contacted, so a slow client
// holds a slot of hfork's, never one of the upstream's (a sync worker
// behind the proxy serves one request at a time), max_body_bytes is
// enforced before a byte goes upstream, and the upstream gets a body with
// a Content-Length that a retry can send again. Up to body_buffer_size
// bytes stay in memory, in buffers kept for the next request; a larger
// body goes to a file in body_temp_dir that is unlinked as soon as it is
// made, so nothing is left behind whatever happens to the worker.

// Fallbacks for a Proxy built without the values hclconfig fills in.
const (
	fallbackBodyBuffer  = 16 << 10
	fallbackBodyTimeout = 60 * time.Second
)

// bodyBuffers reads bodies for one proxy and keeps their buffers.
type bodyBuffers struct {
	size        int
	dir         string        // "" is os.TempDir()
	timeout     time.Duration // the longest wait between two reads
	readTimeout time.Duration // the listener's read_timeout, 0 for none
	pool        sync.Pool     // *bufferedBody
}

func newBodyBuffers(c hclconfig.Proxy, readTimeout time.Duration) *bodyBuffers {
	bs := &bodyBuffers{size: int(c.BodyBufferSize), dir: c.BodyTempDir, timeout: c.BodyTimeout, readTimeout: readTimeout}
	if bs.size <= 0 {
		bs.size = fallbackBodyBuffer
	}
	if bs.timeout <= 0 {
		bs.timeout = fallbackBodyTimeout
	}
	return bs
}

// bodyError is why a body could not be buffered, with the status that
// answers it.
type bodyError struct {
	code int
	err  error
}

func (e *bodyError) Error() string { return fmt.Sprintf("request body: %v", e.err) }
func (e *bodyError) Unwrap() error { return e.err }

// read reads r's body whole. start is when the request arrived: the
// listener's read_timeout, if any, still bounds the whole request. The
// caller releases what it returns once the exchange is over.
func (bs *bodyBuffers) read(w http.ResponseWriter, r *http.Request, start time.Time) (*bufferedBody, error) {
	b, _ := bs.pool.Get().(*bufferedBody)
	if b == nil {
		b = &bufferedBody{pool: bs, mem: make([]byte, bs.size)}
		b.getBody = b.newReader
	}
	b.refs.Store(1)
	src := &b.src
	*src = deadlineReader{r: r.Body, rc: *http.NewResponseController(w), d: bs.timeout}
	if bs.readTimeout > 0 {
		src.limit = start.Add(bs.readTimeout)
	}
	err := b.fill(src, r.ContentLength)
	if err != nil {
		// Nothing more of this body is read: after the answer net/http
		// would wait for up to 256 KiB more of it, with no deadline left,
		// to keep a connection that closes anyway.
		src.rc.SetReadDeadline(aLongTimeAgo)
		*src = deadlineReader{}
		b.release()
		return nil, err
	}
	// The rest of the exchange is the upstream's: the read deadline goes
	// back to what net/http had set, so that its wait for the client's
	// next bytes cannot cancel a slow answer.
	src.rc.SetReadDeadline(src.limit)
	*src = deadlineReader{}
	return b, nil
}

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// bufferedBody is one request's body, in mem or in file.
type bufferedBody struct {
	pool     *bodyBuffers
	mem      []byte
	n        int64
	file     *os.File // nil while the body fits in mem
	refs     atomic.Int32
	head     bodyReader // the request's Body
	first    bodyReader // GetBody's first reader, kept for reuse
	firstOut bool       // first is handed out
	src      deadlineReader
	getBody  func() (io.ReadCloser, error)
}

// fill reads src to its end, into mem, then into a file once mem is full
// (at once when length, the declared length, says it will not fit).
func (b *bufferedBody) fill(src io.Reader, length int64) error {
	mem := b.mem[:cap(b.mem)]
	n := 0
	if length > int64(len(mem)) {
		if err := b.spill(nil); err != nil {
			return err
		}
	}
	for b.file == nil {
		if n == len(mem) {
			// Full: one more read tells whether the body ends here.
			var probe [1]byte
			k, err := src.Read(probe[:])
			if k == 0 && err == io.EOF {
				b.n = int64(n)
				return nil
			}
			if k == 0 && err != nil {
				return readError(err)
			}
			if err := b.spill(mem); err != nil {
				return err
			}
			if _, err := b.file.Write(probe[:k]); err != nil {
				return &bodyError{code: http.StatusInternalServerError, err: fmt.Errorf("write temporary file: %w", err)}
			}
			b.n += int64(k)
			if err == io.EOF {
				return nil
			}
			break
		}
		k, err := src.Read(mem[n:])
		n += k
		if err == io.EOF {
			b.n = int64(n)
			return nil
		}
		if err != nil {
			return readError(err)
		}
	}
	// mem is written out: it serves as the copy buffer now.
	for {
		k, err := src.Read(mem)
		if k > 0 {
			if _, werr := b.file.Write(mem[:k]); werr != nil {
				return &bodyError{code: http.StatusInternalServerError, err: fmt.Errorf("write temporary file: %w", werr)}
			}
			b.n += int64(k)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readError(err)
		}
	}
}

// spill moves the body to a new temporary file, unlinked at once, with
// what mem holds so far.
func (b *bufferedBody) spill(mem []byte) error {
	f, err := os.CreateTemp(b.pool.dir, "hfork-body-")
	if err != nil {
		code := http.StatusInternalServerError
		if OutOfFDs(err) {
			code = http.StatusServiceUnavailable
		}
		return &bodyError{code: code, err: fmt.Errorf("create temporary file: %w", err)}
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return &bodyError{code: http.StatusInternalServerError, err: fmt.Errorf("unlink temporary file: %w", err)}
	}
	b.file = f
	if _, err := f.Write(mem); err != nil {
		return &bodyError{code: http.StatusInternalServerError, err: fmt.Errorf("write temporary file: %w", err)}
	}
	b.n = int64(len(mem))
	return nil
}

// readError names the status of a failed read of the client's body: 413
// past max_body_bytes, 408 when the client was too slow, 400 when it went
// away or broke the framing.
func readError(err error) error {
	var mb *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mb):
		return &bodyError{code: http.StatusRequestEntityTooLarge, err: err}
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return &bodyError{code: http.StatusRequestTimeout, err: err}
	}
	return &bodyError{code: http.StatusBadRequest, err: err}
}

// attach makes b r's body, with a Content-Length and GetBody, so that a
// retry can send it again. Trailers of a chunked body are dropped, as
// nginx drops them: a body with a length has nowhere to carry them.
//
// r.Body itself is a reader that holds nothing: ReverseProxy hides its
// Close from the transport. What the transport sends comes from GetBody
// (proxy.RoundTrip), and the transport closes that one when it is done
// with it, also after RoundTrip returned.
func (b *bufferedBody) attach(r *http.Request) {
	r.ContentLength = b.n
	r.TransferEncoding = nil
	r.Trailer = nil
	if b.n == 0 {
		r.Body, r.GetBody = http.NoBody, nil
		return
	}
	b.head = bodyReader{b: b, unheld: true}
	b.firstOut = false
	r.Body = &b.head
	r.GetBody = b.getBody
}

// newReader is GetBody: a reader from the start that holds b until it is
// closed. The first one is kept in b, for the next request to reuse.
func (b *bufferedBody) newReader() (io.ReadCloser, error) {
	b.refs.Add(1)
	if !b.firstOut {
		b.firstOut = true
		b.first.b, b.first.off = b, 0
		b.first.closed.Store(false)
		return &b.first, nil
	}
	return &bodyReader{b: b}, nil
}

// release drops one hold on b. The transport may still be sending a body
// after the answer came back (an upstream may answer before it read it
// all), so b is reused only once every reader is closed as well.
func (b *bufferedBody) release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
	b.n = 0
	b.pool.pool.Put(b)
}

// bodyReader reads a bufferedBody from its start.
type bodyReader struct {
	b      *bufferedBody
	off    int64
	closed atomic.Bool
	unheld bool // holds no reference on b
}

func (r *bodyReader) Read(p []byte) (int, error) {
	b := r.b
	if r.off >= b.n {
		return 0, io.EOF
	}
	if rest := b.n - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	var n int
	var err error
	if b.file != nil {
		n, err = b.file.ReadAt(p, r.off)
	} else {
		n = copy(p, b.mem[r.off:b.n])
	}
	r.off += int64(n)
	if err == io.EOF && r.off < b.n {
		err = io.ErrUnexpectedEOF
	} else if err == io.EOF {
		err = nil
	}
	return n, err
}

// Close may come twice (ReverseProxy and the transport both close a
// request's body); only the first lets go of the buffer.
func (r *bodyReader) Close() error {
	if !r.unheld && r.closed.CompareAndSwap(false, true) {
		r.b.release()
	}
	return nil
}

// deadlineReader gives each read of the client's body d to bring
// something, and never more than limit (read_timeout) when it is set.
type deadlineReader struct {
	r     io.Reader
	rc    http.ResponseController
	d     time.Duration
	limit time.Time
}

func (dr *deadlineReader) Read(p []byte) (int, error) {
	t := time.Now().Add(dr.d)
	if !dr.limit.IsZero() && dr.limit.Before(t) {
		t = dr.limit
	}
	// A writer without deadlines (HTTP/2 has them, a recorder in a test
	// does not) reads without.
	dr.rc.SetReadDeadline(t)
	return dr.r.Read(p)
}
