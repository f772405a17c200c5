package worker

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

// serveWorker is a worker built for calling ServeHTTP directly.
func serveWorker(t testing.TB, class string, h http.Handler) *worker {
	t.Helper()
	limits, err := limitsFor(testListener(class))
	if err != nil {
		t.Fatal(err)
	}
	limits.deadline = 0
	w := &worker{
		cfg:       testListener(class),
		limits:    limits,
		threads:   semaphore(limits.threads),
		recycleCh: make(chan struct{}),
	}
	tab := &table{handler: h}
	tab.refs.Store(1)
	w.useTable(tab)
	return w
}

func TestResponsesDuringDrainSayClose(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"write":        func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) },
		"write header": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"write string": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") },
		"read from":    func(w http.ResponseWriter, r *http.Request) { io.Copy(w, strings.NewReader("x")) },
		"flush":        func(w http.ResponseWriter, r *http.Request) { http.NewResponseController(w).Flush() },
		"nothing":      func(w http.ResponseWriter, r *http.Request) {},
	} {
		w := serveWorker(t, hclconfig.ClassAsync, h)
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if got := rec.Header().Get("Connection"); got != "" {
			t.Errorf("%s, not draining: Connection %q", name, got)
		}
		w.draining.Store(true)
		rec = httptest.NewRecorder()
		w.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if got := rec.Header().Get("Connection"); got != "close" {
			t.Errorf("%s, draining: Connection %q, want close", name, got)
		}
	}
}

func TestDrainBeginningMidResponse(t *testing.T) {
	var w *worker
	w = serveWorker(t, hclconfig.ClassAsync, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			// The drain begins while the handler runs but before it writes:
			// its response still closes the connection.
			w.draining.Store(true)
			rw.Write([]byte("x"))
			return
		}
		rw.Write([]byte("x"))
		// Too late: the header is out.
		w.draining.Store(true)
	}))
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("GET", "/late", nil))
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Errorf("header written after the drain began: Connection %q, want close", got)
	}
	w.draining.Store(false)
	rec = httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("GET", "/early", nil))
	if got := rec.Result().Header.Get("Connection"); got != "" {
		t.Errorf("header written before the drain: Connection %q, want none", got)
	}
}

func TestInterimResponsesKeepTheConnection(t *testing.T) {
	w := serveWorker(t, hclconfig.ClassAsync, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusEarlyHints)
		if rw.Header().Get("Connection") != "" {
			t.Error("a 1xx response decided the final header")
		}
		rw.WriteHeader(200)
	}))
	w.draining.Store(true)
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Errorf("Connection %q, want close", got)
	}
}

func TestWrapperKeepsOptionalInterfaces(t *testing.T) {
	var rs any = &reqState{}
	if _, ok := rs.(http.Flusher); !ok {
		t.Error("not an http.Flusher")
	}
	if _, ok := rs.(http.Hijacker); !ok {
		t.Error("not an http.Hijacker")
	}
	if _, ok := rs.(io.ReaderFrom); !ok {
		t.Error("not an io.ReaderFrom: static files would lose sendfile")
	}
	if _, ok := rs.(interface{ Unwrap() http.ResponseWriter }); !ok {
		t.Error("no Unwrap for http.ResponseController")
	}
}

func TestThreadSlotHeldForTheRequest(t *testing.T) {
	var w *worker
	w = serveWorker(t, hclconfig.ClassThread, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if len(w.threads) != 1 {
			t.Errorf("%d thread slots taken in the handler, want 1", len(w.threads))
		}
	}))
	w.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if len(w.threads) != 0 {
		t.Errorf("%d thread slots taken after the request, want 0", len(w.threads))
	}
}

// fakeConn is a connection for benchmarks that never touches the network.
type fakeConn struct{ net.Conn }

func (fakeConn) Close() error { return nil }

// benchServe measures ServeHTTP around a trivial handler, as net/http calls
// it on a tracked connection.
func benchServe(b *testing.B, wrap bool) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	w := serveWorker(b, hclconfig.ClassAsync, h)
	w.conns = map[*trackedConn]struct{}{}
	c := w.adopt(fakeConn{}, netip.Addr{})
	ctx := w.connContext(context.Background(), c)
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	rw := discardWriter{h: http.Header{}}
	var served http.Handler = h
	if wrap {
		served = w
	}
	b.ReportAllocs()
	for b.Loop() {
		served.ServeHTTP(rw, req)
	}
}

// BenchmarkServeBare is the handler alone, the baseline.
func BenchmarkServeBare(b *testing.B) { benchServe(b, false) }

// BenchmarkServeTracked is the handler inside the worker's ServeHTTP: the
// difference to BenchmarkServeBare is the per-request overhead of tracking,
// the drain check and the response wrapper.
func BenchmarkServeTracked(b *testing.B) { benchServe(b, true) }

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
func (d discardWriter) Flush()                      {}
func (d discardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, http.ErrNotSupported
}
