package worker

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker/app"
)

// echoUpstream answers with what it was sent, and the method.
func echoUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Write(b)
	}))
	t.Cleanup(up.Close)
	return up
}

type h2Answer struct {
	status int
	header http.Header
	body   string
}

// TestH2ManyStreams runs many streams at once on one connection: fast
// answers and handler answers interleave.
func TestH2ManyStreams(t *testing.T) {
	up := echoUpstream(t)
	l := h2Site(t, up.URL)
	// The request deadline is the async class's timeout: under -race on a
	// busy machine, 100 streams at once may take longer than 2s.
	l.Timeout = time.Minute
	tw, _ := startH2Site(t, l, "hfork")
	c := h2Client()
	errs := make(chan error, 100)
	for i := range 100 {
		go func() {
			path, want := "/static/big.txt", 300<<10
			if i%2 == 1 {
				path, want = "/up/x", 14
			}
			resp, err := c.Post("https://"+tw.addr+path, "text/plain", strings.NewReader("hello, world!\n"))
			if i%2 == 0 {
				resp, err = c.Get("https://" + tw.addr + path)
			}
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != 200 || len(b) != want) {
				err = fmt.Errorf("%s: %d, %d bytes", path, resp.StatusCode, len(b))
			}
			errs <- err
		}()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// rawH2 is a client of frames over TLS, to see what the server sends.
type rawH2 struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
}

// startH2Handler runs a worker whose fast path is h2Site's routes and
// whose handler (for what the fast path leaves, like a POST) is h.
func startH2Handler(t *testing.T, h http.Handler) *testWorker {
	t.Helper()
	l := h2Site(t, "")
	site, err := app.New(l, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []wire.CertPEM{pemPair(t, l.TLS.Certificates[0].Cert, l.TLS.Certificates[0].Key)}
	certs, err := certset.New(pairs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return startWorker(t, l, h, nil, func(o *options) {
		o.Fast = site.(app.FastServer)
		o.Certificates = certs
	})
}

// TestH2HandlerFlushAndPanic: a handler's Flush sends what it wrote at
// once; a handler that panics resets its stream, and the connection
// serves on.
func TestH2HandlerFlushAndPanic(t *testing.T) {
	more := make(chan struct{})
	tw := startH2Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			<-more
			io.WriteString(w, "second")
		case "/panic":
			panic("handler broke")
		default:
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, r.Proto+" "+r.Host)
		}
	}))
	c := h2Client()
	resp, err := c.Post("https://"+tw.addr+"/stream", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first " {
		t.Fatalf("before the handler went on: %q, %v", buf, err)
	}
	close(more)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(rest) != "second" {
		t.Fatalf("rest %q", rest)
	}
	if resp, err := c.Post("https://"+tw.addr+"/panic", "text/plain", nil); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("a panicking handler's stream ended cleanly")
		}
	}
	if a := h2Do(t, c, "POST", "https://"+tw.addr+"/other", []byte("x")); a.status != http.StatusTeapot || a.body != "HTTP/2.0 "+tw.addr {
		t.Fatalf("after the panic: %+v", a)
	}
}

// TestH2BodyAfterAnswer: a handler that answers without reading the body
// leaves the stream open for the rest of it, so errors in it are still
// seen; past maxDiscard the server resets the stream with NO_ERROR.
func TestH2BodyAfterAnswer(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	post := func(r *rawH2, stream uint32, kv ...string) {
		r.hbuf.Reset()
		fs := append([]string{":method", "POST", ":scheme", "https", ":authority", "localhost", ":path", "/"}, kv...)
		for i := 0; i < len(fs); i += 2 {
			r.enc.WriteField(hpack.HeaderField{Name: fs[i], Value: fs[i+1]})
		}
		r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: r.hbuf.Bytes(), EndHeaders: true})
	}
	// answered reads until stream's answer has ended; rst until the
	// stream is reset, and returns the code.
	answered := func(r *rawH2, stream uint32) {
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := f.(*http2.DataFrame); ok && d.StreamID == stream && d.StreamEnded() {
				return
			}
		}
	}
	rst := func(r *rawH2, stream uint32) http2.ErrCode {
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f, ok := f.(*http2.RSTStreamFrame); ok && f.StreamID == stream {
				return f.ErrCode
			}
		}
	}
	r := dialH2(t, tw.addr)
	post(r, 1, "content-length", "1")
	answered(r, 1)
	r.fr.WriteData(1, true, []byte("four"))
	if code := rst(r, 1); code != http2.ErrCodeProtocol {
		t.Fatalf("a body longer than its content-length: RST_STREAM %v", code)
	}
	post(r, 3)
	answered(r, 3)
	chunk := make([]byte, 16<<10)
	for range (maxDiscard / len(chunk)) + 2 {
		r.fr.WriteData(3, false, chunk)
	}
	if code := rst(r, 3); code != http2.ErrCodeNo {
		t.Fatalf("an endless body after the answer: RST_STREAM %v", code)
	}
}

// TestH2UploadsAtOnce: bodies sent in full records on several connections
// at once reach their handlers whole and unmixed, though the readers take
// their record-sized buffers from one pool and give them back between
// bodies.
func TestH2UploadsAtOnce(t *testing.T) {
	tw := startH2Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(b)
	}))
	const conns, rounds = 4, 3
	errs := make(chan error, conns)
	for i := range conns {
		go func() {
			c := h2Client() // a connection of its own
			for r := range rounds {
				// A body of its own bytes, and a small request after it, so
				// the reader gives its big buffer back and takes one again.
				body := bytes.Repeat([]byte{byte('a' + i), byte('0' + r)}, 100<<10)
				resp, err := c.Post("https://"+tw.addr+"/up", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !bytes.Equal(got, body) {
					errs <- fmt.Errorf("connection %d round %d: %d bytes back (%v), want its own %d", i, r, len(got), err, len(body))
					return
				}
				resp, err = c.Get("https://" + tw.addr + "/")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
