package app

import (
	"bytes"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// Compressed static files are made once and kept, per worker, in
// fileCache: at most cacheMax bytes of compressed data, the oldest entry
// going first; a file whose compressed form would take more than
// cacheEntryMax is not kept, and net/http compresses it as it sends it.
const (
	cacheMax      = 64 << 20
	cacheEntryMax = 8 << 20
)

var precompressedExt = map[string]string{encZstd: ".zst", encGzip: ".gz"}

// defaultPrecompressed is the order precompressed files are looked for
// when the route compresses nothing itself.
var defaultPrecompressed = []string{encZstd, encGzip}

// encodings is the order s offers codings in.
func (s *static) encodings() []string {
	if s.comp != nil {
		return s.comp.encodings
	}
	return defaultPrecompressed
}

// fileID says which version of a file a cache entry was made from.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func statID(st *unix.Stat_t) fileID {
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
}

type cacheKey struct {
	s    *static
	name string
	enc  string
}

type cacheEntry struct {
	id   fileID
	body []byte
}

// compressCache holds compressed files; its lock is held for map work
// only, never while compressing.
type compressCache struct {
	mu    sync.Mutex
	m     map[cacheKey]cacheEntry
	order []cacheKey // oldest first
	bytes int
	max   int
}

var fileCache = &compressCache{m: map[cacheKey]cacheEntry{}, max: cacheMax}

func (c *compressCache) get(k cacheKey, id fileID) ([]byte, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || e.id != id {
		return nil, false
	}
	return e.body, true
}

func (c *compressCache) put(k cacheKey, id fileID, body []byte) {
	if len(body) > cacheEntryMax || len(body) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		c.bytes -= len(old.body)
	} else {
		c.order = append(c.order, k)
	}
	c.m[k] = cacheEntry{id: id, body: body}
	c.bytes += len(body)
	for c.bytes > c.max && len(c.order) > 0 {
		oldest := c.order[0]
		c.order = c.order[1:]
		if e, ok := c.m[oldest]; ok && oldest != k {
			c.bytes -= len(e.body)
			delete(c.m, oldest)
		}
	}
}

// compressedFile returns the file open at fd compressed with enc, from
// the cache or made now; ok is false when the file is too large to keep.
func (s *static) compressedFile(name, enc string, fd int, id fileID) ([]byte, bool) {
	k := cacheKey{s: s, name: name, enc: enc}
	if body, ok := fileCache.get(k, id); ok {
		return body, true
	}
	if id.size > cacheEntryMax*4 {
		return nil, false
	}
	data := make([]byte, id.size)
	for off := 0; off < len(data); {
		n, err := rawsys.Pread(fd, data[off:], int64(off))
		if err != nil || n <= 0 {
			return nil, false
		}
		off += n
	}
	body := s.comp.compressBytes(enc, data)
	if len(body) > cacheEntryMax {
		return nil, false
	}
	fileCache.put(k, id, body)
	return body, true
}

// encodedFast is the fast path's answer for a file when s compresses or
// serves precompressed files: a precompressed file by sendfile, a cached
// compression from memory, or the file itself with Vary. It declines what
// net/http must stream.
func (s *static) encodedFast(req *FastRequest, resp *FastResponse, dirfd, fd int, st *unix.Stat_t, name, ctype string) bool {
	vary := s.precompressed
	if s.precompressed {
		if enc, _ := negotiate(req.AcceptEncoding, s.encodings()); enc != "" {
			pfd, pst, code := s.openFast(dirfd, name+precompressedExt[enc])
			if code == 0 && pst.Mode&unix.S_IFMT == unix.S_IFREG {
				rawsys.Close(fd)
				s.fileHeadFast(resp, st, ctype, enc, pst.Size, true)
				resp.FileFD, resp.FileSize = pfd, pst.Size
				return true
			}
			if code == 0 {
				rawsys.Close(pfd)
			}
		}
	}
	if s.comp != nil && s.comp.typeOK(ctype) {
		enc, identityOK := s.comp.negotiate(req.AcceptEncoding)
		eligible := st.Size >= s.comp.minSize && st.Size > 0
		vary = vary || eligible
		switch {
		case enc != "" && (eligible || !identityOK) && st.Size > 0:
			body, ok := s.compressedFile(name, enc, fd, statID(st))
			if !ok {
				rawsys.Close(fd)
				return false
			}
			rawsys.Close(fd)
			s.fileHeadFast(resp, st, ctype, enc, int64(len(body)), true)
			resp.Body = body
			return true
		case enc == "" && !identityOK:
			rawsys.Close(fd)
			statusFast(resp, http.StatusNotAcceptable)
			return true
		}
	}
	s.fileHeadFast(resp, st, ctype, "", -1, vary)
	resp.FileFD, resp.FileSize = fd, st.Size
	return true
}

// serveEncoded is ServeHTTP's share of compression for the file f at
// name: it answers and reports true, or sets Vary as needed and leaves
// the identity answer to ServeContent. Range requests get identity.
func (s *static) serveEncoded(w http.ResponseWriter, r *http.Request, root *os.Root, name string, f *os.File, fi fs.FileInfo) bool {
	ctype := mime.TypeByExtension(filepath.Ext(name))
	if ctype == "" {
		var buf [512]byte
		n, _ := io.ReadFull(f, buf[:])
		ctype = http.DetectContentType(buf[:n])
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false
		}
	}
	h := w.Header()
	ae := strings.Join(r.Header["Accept-Encoding"], ",")
	ranged := r.Header.Get("Range") != ""
	vary := s.precompressed
	if s.precompressed && !ranged {
		if enc, _ := negotiate(ae, s.encodings()); enc != "" {
			pf, pfi, code := s.open(root, name+precompressedExt[enc])
			if code == 0 && pfi.Mode().IsRegular() {
				defer pf.Close()
				s.encodedHeader(h, ctype, enc, fi)
				h["Content-Length"] = []string{strconv.FormatInt(pfi.Size(), 10)}
				http.ServeContent(w, r, name, fi.ModTime(), pf)
				return true
			}
			if code == 0 {
				pf.Close()
			}
		}
	}
	if s.comp != nil && s.comp.typeOK(ctype) {
		enc, identityOK := s.comp.negotiate(ae)
		eligible := fi.Size() >= s.comp.minSize && fi.Size() > 0
		vary = vary || eligible
		switch {
		case ranged:
		case enc != "" && (eligible || !identityOK) && fi.Size() > 0:
			var st unix.Stat_t
			sc, err := f.SyscallConn()
			if err != nil {
				return false
			}
			var body []byte
			ok := false
			sc.Control(func(fd uintptr) {
				if rawsys.Fstat(int(fd), &st) == nil {
					body, ok = s.compressedFile(name, enc, int(fd), statID(&st))
				}
			})
			s.encodedHeader(h, ctype, enc, fi)
			if !ok {
				// Too large to keep: compressed as it goes out.
				h.Del("Accept-Ranges")
				w.WriteHeader(http.StatusOK)
				if r.Method != http.MethodHead {
					e := s.comp.newEncoder(enc, w)
					io.Copy(e, f)
					e.Close()
					s.comp.putEncoder(enc, e)
				}
				return true
			}
			// ServeContent leaves out the length of an encoded body
			// (it cannot know whether a wrapper encodes as it writes);
			// this one is whole.
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			http.ServeContent(w, r, name, fi.ModTime(), bytes.NewReader(body))
			return true
		case enc == "" && !identityOK:
			writeStatus(w, http.StatusNotAcceptable)
			return true
		}
	}
	if vary {
		h["Vary"] = hdrAcceptEncoding
	}
	return false
}

// encodedHeader sets what a compressed answer for fi says of itself.
func (s *static) encodedHeader(h http.Header, ctype, enc string, fi fs.FileInfo) {
	h["Content-Type"] = []string{ctype}
	h["Content-Encoding"] = []string{enc}
	h["Vary"] = hdrAcceptEncoding
	h["Etag"] = []string{weakETag(etag(fi))}
}
