package pool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/pool/internal/proxyproto"
)

// fallbackReadTimeout bounds how long the master waits for a client's
// request (or TLS handshake) before it gives up on that connection.
const fallbackReadTimeout = 5 * time.Second

// fallback answers a failing listener's clients from the master while the
// listener has no ready worker: HTTP listeners get a 503 with Retry-After,
// others have each connection closed at once (with a reset on TCP). Either
// way a client learns that nothing serves, instead of waiting in the
// accept queue until it gives up.
//
// It accepts on duplicates of the listener's sockets, so stopping it
// closes only its own descriptors: the sockets and the connections still
// queued on them stay for the workers.
type fallback struct {
	lns        []net.Listener
	srv        *http.Server // nil: connections are closed, not answered
	retryAfter atomic.Int64 // seconds, for Retry-After
	wg         sync.WaitGroup
	stopOnce   sync.Once
}

// startFallback starts answering on socks. With http false every
// connection is closed; with tlsConf set, HTTP is answered over TLS; with
// proxyProtocol, after each connection's PROXY header (one without is
// closed unanswered, as a worker does).
func startFallback(socks []*os.File, http bool, tlsConf *tls.Config, proxyProtocol bool) (*fallback, error) {
	f := &fallback{}
	f.retryAfter.Store(1)
	for _, s := range socks {
		// net.FileListener duplicates the descriptor; an os.NewFile file
		// keeps the shared socket non-blocking (see listeners.DupFD).
		ln, err := net.FileListener(s)
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("fallback: %w", err)
		}
		if http && proxyProtocol {
			ln = proxyListener{ln}
		}
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		f.lns = append(f.lns, ln)
	}
	if http {
		f.srv = f.server()
		for _, ln := range f.lns {
			f.wg.Go(func() { f.srv.Serve(ln) })
		}
		return f, nil
	}
	for _, ln := range f.lns {
		f.wg.Go(func() { refuse(ln) })
	}
	return f, nil
}

func (f *fallback) server() *http.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", strconv.FormatInt(f.retryAfter.Load(), 10))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			io.WriteString(w, "503 service unavailable: no worker is ready, try again later\n")
		}
	})
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: fallbackReadTimeout,
		ReadTimeout:       fallbackReadTimeout,
		WriteTimeout:      fallbackReadTimeout,
		// Clients that cannot be answered (a bad request, a failed
		// handshake) are not the operator's news.
		ErrorLog: log.New(io.Discard, "", 0),
		// HTTP/2 would keep a client on the master after a worker is back.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	// One answer per connection: the next request must reach a worker
	// as soon as one is ready.
	srv.SetKeepAlivesEnabled(false)
	return srv
}

// proxyListener reads the PROXY header that comes first on each
// connection, before TLS, on the connection's own goroutine (see
// proxyproto.Conn): the load balancer in front gets its 503 too.
type proxyListener struct{ net.Listener }

func (l proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return proxyproto.NewConn(c, fallbackReadTimeout), nil
}

// refuse closes every connection ln accepts; on TCP with a reset, so the
// client reads an error rather than an end of file it may take for an
// empty answer.
func refuse(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// setRetryAfter sets the Retry-After answer, in whole seconds (at least 1).
func (f *fallback) setRetryAfter(d time.Duration) {
	s := int64((d + time.Second - 1) / time.Second)
	f.retryAfter.Store(max(s, 1))
}

// stop closes the fallback's descriptors and waits until it accepts no
// more; a connection it is answering is cut.
func (f *fallback) stop() {
	f.stopOnce.Do(func() {
		if f.srv != nil {
			f.srv.Close()
		}
		for _, ln := range f.lns {
			ln.Close()
		}
		f.wg.Wait()
	})
}
