package app

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
)

// recorder is the ResponseWriter the access log hands to handlers. It
// notes status and body size and otherwise stays out of the way: ReadFrom
// reaches net/http's own, so a static file still goes out by sendfile(2),
// and Flush, Hijack and Unwrap keep streaming, WebSocket and
// http.ResponseController working.
type recorder struct {
	rw     http.ResponseWriter
	status int
	bytes  int64
}

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

func newRecorder(w http.ResponseWriter) *recorder {
	rec := recorderPool.Get().(*recorder)
	*rec = recorder{rw: w}
	return rec
}

func (rec *recorder) release() {
	*rec = recorder{}
	recorderPool.Put(rec)
}

// statusCode is what the client got: net/http sends 200 for a handler that
// wrote nothing.
func (rec *recorder) statusCode() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

// bodyBytes is nginx's $body_bytes_sent: net/http counts and discards a
// HEAD body, which never reaches the client.
func (rec *recorder) bodyBytes(r *http.Request) int64 {
	if r.Method == http.MethodHead {
		return 0
	}
	return rec.bytes
}

func (rec *recorder) Header() http.Header { return rec.rw.Header() }

func (rec *recorder) WriteHeader(code int) {
	// 1xx answers other than 101 come before the real one.
	if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
	}
	rec.rw.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.rw.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy (and so http.ServeContent) reach the connection's
// sendfile path through this wrapper.
func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rec.rw.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(rec.rw, src)
	}
	rec.bytes += n
	return n, err
}

func (rec *recorder) Flush() { _ = rec.FlushError() }

// FlushError is what http.ResponseController calls, so the error of the
// writer underneath is not lost.
func (rec *recorder) FlushError() error {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return http.NewResponseController(rec.rw).Flush()
}

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rec.rw).Hijack()
	if err == nil && rec.status == 0 {
		rec.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap gives http.ResponseController the writer underneath, for
// deadlines and full duplex.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.rw }
