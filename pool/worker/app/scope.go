package app

import (
	"bufio"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/hfork/hfork/hclconfig"
)

// scope is what the levels of the config (listener, host, route) do to
// the answers of the apps under them, folded for one route or one router:
// the header policy, the error pages and compression.
type scope struct {
	headers *HeaderPolicy
	pages   map[int]*errorPage // by status
	comp    *compressor
	// stream: the writer compresses what the app writes (proxied
	// answers); respond and static compress their own bodies, once.
	stream bool
}

// level is one level's share of a scope.
type level struct {
	headers  hclconfig.Headers
	pages    map[int]string
	compress hclconfig.Compress
}

// pageFiles holds the error pages one New has read, by file, so a
// listener's page is read and kept once, not once per route.
type pageFiles map[string]*errorPage

// newScope folds levels, outermost first; nil when it does nothing.
func newScope(read pageFiles, levels []level) (*scope, error) {
	hs := make([]hclconfig.Headers, len(levels))
	cs := make([]hclconfig.Compress, len(levels))
	files := map[int]string{}
	for i, lv := range levels {
		hs[i], cs[i] = lv.headers, lv.compress
		maps.Copy(files, lv.pages) // the inner level's page wins
	}
	sc := &scope{headers: newHeaderPolicy(hs...), comp: newCompressor(cs...)}
	for code, file := range files {
		key := strconv.Itoa(code) + " " + file
		pg, ok := read[key]
		if !ok {
			var err error
			if pg, err = loadErrorPage(code, file); err != nil {
				return nil, err
			}
			if read != nil {
				read[key] = pg
			}
		}
		if sc.pages == nil {
			sc.pages = map[int]*errorPage{}
		}
		sc.pages[code] = pg
	}
	if sc.headers == nil && sc.pages == nil && sc.comp == nil {
		return nil, nil
	}
	return sc, nil
}

// serve runs h under sc.
func (sc *scope) serve(h http.Handler, w http.ResponseWriter, r *http.Request) {
	if sc == nil {
		h.ServeHTTP(w, r)
		return
	}
	sw := scopeWriterPool.Get().(*scopeWriter)
	*sw = scopeWriter{rw: w, sc: sc, req: r}
	h.ServeHTTP(sw, r)
	sw.finish()
	*sw = scopeWriter{}
	scopeWriterPool.Put(sw)
}

// status answers code as writeStatus does, under sc.
func (sc *scope) status(w http.ResponseWriter, r *http.Request, code int) {
	sc.serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeStatus(w, code) }), w, r)
}

// fast applies sc to a fast answer. Answers an app made under sc already
// (Final), and proxied ones, whose head the upstream writes, are left.
func (sc *scope) fast(resp *FastResponse) {
	if sc == nil || resp.Final || resp.Proxy != nil {
		return
	}
	if pg := sc.pages[resp.Status]; pg != nil && resp.own {
		resp.Head, resp.Body = pg.fastHead, pg.body
	}
	if sc.headers == nil {
		return
	}
	resp.hbuf = sc.headers.rewriteHead(resp.hbuf[:0], resp.Head)
	resp.Head = resp.hbuf
}

// scopeWriter applies a scope to what a handler writes: compression (for
// a streaming scope) and the header policy when the head goes out. Like
// the access log's recorder, it keeps ReadFrom (sendfile), Flush, Hijack
// and Unwrap reachable.
type scopeWriter struct {
	rw    http.ResponseWriter
	sc    *scope
	req   *http.Request
	wrote bool
	enc   string  // the coding being written, "" for none
	e     encoder // writes enc to rw
}

var scopeWriterPool = sync.Pool{New: func() any { return new(scopeWriter) }}

func (sw *scopeWriter) Header() http.Header { return sw.rw.Header() }

func (sw *scopeWriter) WriteHeader(code int) {
	if !sw.wrote && code >= 200 {
		sw.head(code)
	}
	sw.rw.WriteHeader(code)
}

// head decides on compression and applies the policy, once, before the
// final head leaves.
func (sw *scopeWriter) head(code int) {
	sw.wrote = true
	h := sw.rw.Header()
	if sw.sc.stream {
		sw.enc = streamCoding(sw.sc.comp, sw.req, code, h)
		if sw.enc != "" && sw.req.Method != http.MethodHead {
			sw.e = sw.sc.comp.newEncoder(sw.enc, writerOnly{sw.rw})
		}
	}
	if p := sw.sc.headers; p != nil {
		p.apply(h)
	}
}

// finish ends the compressed stream, if any.
func (sw *scopeWriter) finish() {
	if sw.e != nil {
		sw.e.Close()
		sw.sc.comp.putEncoder(sw.enc, sw.e)
		sw.e = nil
	}
}

func (sw *scopeWriter) Write(b []byte) (int, error) {
	if !sw.wrote {
		sw.head(http.StatusOK)
	}
	if sw.e != nil {
		return sw.e.Write(b)
	}
	return sw.rw.Write(b)
}

func (sw *scopeWriter) ReadFrom(src io.Reader) (int64, error) {
	if !sw.wrote {
		sw.head(http.StatusOK)
	}
	if sw.e != nil {
		return io.Copy(sw.e, src)
	}
	if rf, ok := sw.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{sw.rw}, src)
}

// writerOnly hides ReadFrom, so io.Copy does not call back into it.
type writerOnly struct{ io.Writer }

func (sw *scopeWriter) Flush() {
	if !sw.wrote {
		sw.head(http.StatusOK)
	}
	if f, ok := sw.e.(interface{ Flush() error }); ok {
		f.Flush()
	}
	if f, ok := sw.rw.(http.Flusher); ok {
		f.Flush()
	}
}

func (sw *scopeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := sw.rw.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("hijack: the connection does not support it")
}

func (sw *scopeWriter) Unwrap() http.ResponseWriter { return sw.rw }
