package app

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/hfork/hfork/hclconfig"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Content codings.
const (
	encZstd = "zstd"
	encGzip = "gzip"
)

// compressor is a route's compress block: which codings, for which types,
// from which size, at which level. Its encoders are pooled.
type compressor struct {
	encodings []string // the server's preference, first best
	types     []string // lower-case media types; "text/*" matches a family
	minSize   int64
	level     int
	gzipPool  sync.Pool
	zstdPool  sync.Pool
}

// newCompressor folds compress blocks, outermost first: the innermost one
// declared wins whole. nil when compression is off.
func newCompressor(levels ...hclconfig.Compress) *compressor {
	var c hclconfig.Compress
	for _, lv := range levels {
		if lv.Off || len(lv.Encodings) > 0 {
			c = lv
		}
	}
	if c.Off || len(c.Encodings) == 0 {
		return nil
	}
	cp := &compressor{encodings: c.Encodings, minSize: c.MinSize, level: c.Level}
	for _, t := range c.Types {
		cp.types = append(cp.types, strings.ToLower(t))
	}
	return cp
}

// typeOK reports whether an answer of Content-Type ctype is compressed.
func (cp *compressor) typeOK(ctype string) bool {
	if i := strings.IndexByte(ctype, ';'); i >= 0 {
		ctype = ctype[:i]
	}
	ctype = strings.TrimSpace(ctype)
	for _, t := range cp.types {
		if fam, ok := strings.CutSuffix(t, "/*"); ok {
			if len(ctype) > len(fam) && ctype[len(fam)] == '/' && strings.EqualFold(ctype[:len(fam)], fam) {
				return true
			}
		} else if strings.EqualFold(ctype, t) {
			return true
		}
	}
	return false
}

// negotiate picks the coding of an answer for Accept-Encoding ae: of the
// compressor's codings, the one the client gives the highest q, ties going
// to the server's order; "" for none. identityOK is false when the client
// refused identity ("identity;q=0", or "*;q=0" without naming identity).
// A request without Accept-Encoding gets identity.
func (cp *compressor) negotiate(ae string) (enc string, identityOK bool) {
	return negotiate(ae, cp.encodings)
}

func negotiate(ae string, encodings []string) (enc string, identityOK bool) {
	if ae == "" {
		return "", true
	}
	qIdentity, qStar := -1.0, -1.0
	var q [2]float64 // by position in encodings (at most two codings exist)
	q[0], q[1] = -1, -1
	for len(ae) > 0 {
		var item string
		if i := strings.IndexByte(ae, ','); i >= 0 {
			item, ae = ae[:i], ae[i+1:]
		} else {
			item, ae = ae, ""
		}
		name, params, _ := strings.Cut(item, ";")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		qv := parseQ(params)
		switch {
		case name == "*":
			qStar = qv
		case strings.EqualFold(name, "identity"):
			qIdentity = qv
		default:
			if strings.EqualFold(name, "x-gzip") {
				name = encGzip
			}
			for i, e := range encodings {
				if i < len(q) && strings.EqualFold(name, e) {
					q[i] = qv
				}
			}
		}
	}
	best := 0.0
	for i, e := range encodings {
		if i >= len(q) {
			break
		}
		qe := q[i]
		if qe < 0 {
			qe = max(qStar, 0)
		}
		if qe > best {
			best, enc = qe, e
		}
	}
	switch {
	case qIdentity >= 0:
		identityOK = qIdentity > 0
	case qStar >= 0:
		identityOK = qStar > 0
	default:
		identityOK = true
	}
	return enc, identityOK
}

// parseQ reads the q parameter of an Accept-Encoding item; 1 without one,
// 0 for one that does not parse.
func parseQ(params string) float64 {
	for len(params) > 0 {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		p = strings.TrimSpace(p)
		if len(p) >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' {
			v, err := strconv.ParseFloat(strings.TrimSpace(p[2:]), 64)
			if err != nil || v < 0 || v > 1 {
				return 0
			}
			return v
		}
	}
	return 1
}

// encoder is a pooled streaming encoder for one coding.
type encoder interface {
	io.WriteCloser
	Reset(io.Writer)
}

// newEncoder returns a pooled encoder for enc writing to w; put it back
// with putEncoder after Close.
func (cp *compressor) newEncoder(enc string, w io.Writer) encoder {
	pool := &cp.gzipPool
	if enc == encZstd {
		pool = &cp.zstdPool
	}
	if e, ok := pool.Get().(encoder); ok {
		e.Reset(w)
		return e
	}
	if enc == encZstd {
		// One goroutine and a small window: answers are small next to a
		// worker's memory, and the worker's CPUs serve other requests.
		z, _ := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(cp.level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		return z
	}
	g, err := gzip.NewWriterLevel(w, min(max(cp.level, gzip.BestSpeed), gzip.BestCompression))
	if err != nil {
		g = gzip.NewWriter(w)
	}
	return g
}

func (cp *compressor) putEncoder(enc string, e encoder) {
	if enc == encZstd {
		cp.zstdPool.Put(e)
	} else {
		cp.gzipPool.Put(e)
	}
}

// compressBytes encodes b whole.
func (cp *compressor) compressBytes(enc string, b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/3 + 64)
	e := cp.newEncoder(enc, &buf)
	e.Write(b)
	e.Close()
	cp.putEncoder(enc, e)
	return buf.Bytes()
}

// weakETag makes a strong validator weak, for a compressed answer: the
// bytes differ from the file's, the meaning does not, and If-None-Match
// compares weakly so a cached copy still revalidates.
func weakETag(tag string) string {
	if tag == "" || strings.HasPrefix(tag, "W/") {
		return tag
	}
	return "W/" + tag
}

// streamCoding decides how a streamed answer (a proxied one) goes out:
// it adds Vary when the answer could have been compressed, and when the
// client takes a coding, sets Content-Encoding, drops the length and
// weakens the ETag. Not for Range requests or partial answers, answers
// already encoded, types the compressor does not take, or lengths below
// min_size.
func streamCoding(cp *compressor, r *http.Request, code int, h http.Header) string {
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusPartialContent ||
		h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" || !cp.typeOK(h.Get("Content-Type")) {
		return ""
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < cp.minSize {
			return ""
		}
	}
	addVary(h)
	if r.Header.Get("Range") != "" {
		return ""
	}
	enc, _ := cp.negotiate(strings.Join(r.Header["Accept-Encoding"], ","))
	if enc == "" {
		return ""
	}
	h.Set("Content-Encoding", enc)
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	if et := h.Get("Etag"); et != "" {
		h.Set("Etag", weakETag(et))
	}
	return enc
}

var hdrAcceptEncoding = []string{"Accept-Encoding"}

// addVary adds Accept-Encoding to h's Vary, once.
func addVary(h http.Header) {
	vs := h["Vary"]
	if len(vs) == 0 {
		h["Vary"] = hdrAcceptEncoding
		return
	}
	for _, v := range vs {
		for tok := range strings.SplitSeq(v, ",") {
			if t := strings.TrimSpace(tok); t == "*" || strings.EqualFold(t, "Accept-Encoding") {
				return
			}
		}
	}
	h["Vary"] = append(vs[:len(vs):len(vs)], "Accept-Encoding")
}
