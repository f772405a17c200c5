package worker

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Server limits shared by every class.
const (
	// readHeaderTimeout bounds a client that connects and trickles its
	// request line; the body may stream as slowly as the app allows.
	readHeaderTimeout = 10 * time.Second
	// maxHeaderBytes caps one request's header block.
	maxHeaderBytes = 1 << 20
)

// newServer builds the http.Server every listener of the worker serves on.
// It speaks HTTP/1 only: the drain relies on one request at a time per
// connection and on "Connection: close".
func (w *worker) newServer() *http.Server {
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       w.limits.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         w.connState,
		ConnContext:       w.connContext,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
	}
	var p http.Protocols
	p.SetHTTP1(true)
	srv.Protocols = &p
	// Set before serving, never during a drain: with keep-alives off, every
	// response says "Connection: close" and each connection carries one
	// request.
	srv.SetKeepAlivesEnabled(w.limits.keepAlive)
	return srv
}

// reqState is the worker's view of the request in flight on a connection,
// and the ResponseWriter the app writes to. Like reqSlot it lives in the
// connection and is reused, so the hot path allocates nothing.
type reqState struct {
	slot      reqSlot
	w         *worker
	rw        http.ResponseWriter
	committed bool // the response header is decided
	thread    bool // holds a thread slot
	dl        *requestDeadline
	done      atomic.Bool
}

// ServeHTTP wraps the app: it takes a thread slot (thread class), tracks
// the request while it is in flight, sets the request deadline (async
// class) and, during a drain, marks the response "Connection: close".
func (w *worker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var rs *reqState
	if c, ok := r.Context().Value(connKey{}).(*trackedConn); ok {
		rs = &c.req
	} else {
		rs = new(reqState)
	}
	if w.threads != nil {
		w.threads <- struct{}{}
	}
	rs.w, rs.rw, rs.committed, rs.thread, rs.dl = w, rw, false, w.threads != nil, nil
	rs.done.Store(false)
	w.track.begin(&rs.slot, r.Method, r.URL.Path, time.Now())
	defer w.finish(rs, false)
	if w.limits.deadline > 0 {
		rs.dl = newRequestDeadline(r.Context(), w.limits.deadline)
		r = r.WithContext(rs.dl)
	}
	w.handler.ServeHTTP(rs, r)
	// A handler that wrote nothing gets its response from net/http after
	// this returns, from the header map as the handler left it.
	rs.commit()
}

// finish ends the request of rs once: when the handler returns, or earlier
// when the connection is upgraded (then the request stops counting as in
// flight, gives its thread slot back and loses its deadline, while the
// stream lives on).
func (w *worker) finish(rs *reqState, upgraded bool) {
	if !rs.done.CompareAndSwap(false, true) {
		return
	}
	served, ok := w.track.end(&rs.slot)
	if rs.thread {
		rs.thread = false
		<-w.threads
	}
	if rs.dl != nil {
		if upgraded {
			rs.dl.lift()
		} else {
			rs.dl.end()
		}
	}
	if ok && w.maxRequests > 0 && served >= w.maxRequests && w.recycle.CompareAndSwap(false, true) {
		close(w.recycleCh)
	}
}

// commit is called when the response header is about to be written: from
// then on it cannot change, so this is the last moment a drain can ask for
// "Connection: close". net/http honours the handler's header and closes
// the connection after the response.
func (rs *reqState) commit() {
	if rs.committed {
		return
	}
	rs.committed = true
	if rs.w.draining.Load() {
		rs.rw.Header().Set("Connection", "close")
	}
}

func (rs *reqState) Header() http.Header { return rs.rw.Header() }

func (rs *reqState) WriteHeader(code int) {
	if code >= 200 {
		// 1xx responses are interim; 101 hands the connection over.
		rs.commit()
	}
	rs.rw.WriteHeader(code)
}

func (rs *reqState) Write(p []byte) (int, error) {
	rs.commit()
	return rs.rw.Write(p)
}

func (rs *reqState) WriteString(s string) (int, error) {
	rs.commit()
	return io.WriteString(rs.rw, s)
}

// ReadFrom keeps net/http's sendfile path for static files.
func (rs *reqState) ReadFrom(r io.Reader) (int64, error) {
	rs.commit()
	if rf, ok := rs.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{rs.rw}, r)
}

func (rs *reqState) Flush() { _ = rs.FlushError() }

// FlushError is what http.ResponseController calls.
func (rs *reqState) FlushError() error {
	rs.commit()
	return http.NewResponseController(rs.rw).Flush()
}

func (rs *reqState) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rs.committed = true // the app writes its own response, if any
	return http.NewResponseController(rs.rw).Hijack()
}

// Unwrap lets http.ResponseController reach net/http's writer for
// deadlines and full duplex.
func (rs *reqState) Unwrap() http.ResponseWriter { return rs.rw }
