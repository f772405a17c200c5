package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// rootRecheck is how often a static app compares its open root directory
// with what the configured path names now, so a deploy that swaps a
// "current" symlink is served within a second without a reload.
const rootRecheck = time.Second

// static serves the files under one directory. All lookups go through an
// os.Root, which refuses any path, ".." or symlink that resolves outside the
// directory, and every absolute symlink (even one pointing back inside):
// links in a served tree must be relative. The checks in ServeHTTP only
// refuse early what no real client sends. Refused, missing and non-regular
// names are all 404, so probing learns nothing; unreadable ones are 403.
type static struct {
	prefix   string
	dir      string
	index    []string
	fallback string   // "" for none
	hidden   []string // path.Match patterns for one segment
	// comp compresses the route's files (staticenc.go); precompressed
	// serves "file.zst" and "file.gz" beside them.
	comp          *compressor
	precompressed bool
	log           *slog.Logger
	root          atomic.Pointer[staticRoot]
	checkAt       atomic.Int64 // unix nanoseconds of the next identity check
	fds           FDAlarm      // out of file descriptors: 503 (fdlimit.go)
	// settle is how old a file's ctime must be before the fast path
	// keeps its answer (staticcache.go); tests shorten it.
	settle time.Duration
}

type staticRoot struct {
	root *os.Root
	fi   fs.FileInfo // of the opened directory, to notice a swap
	dir  *os.File    // the directory itself, for the fast path's openat2
	// cache holds the fast path's answers for small files beneath dir.
	cache staticCache
}

var hdrAllowGetHead = []string{"GET, HEAD"}

func newStatic(prefix string, c hclconfig.Static, sc *scope, log *slog.Logger) (*static, error) {
	if c.Root == "" {
		return nil, errors.New("static: root is empty")
	}
	s := &static{prefix: prefix, dir: c.Root, index: c.Index, fallback: c.Fallback, hidden: c.Hidden,
		precompressed: c.Precompressed, log: log, settle: cacheSettle}
	if sc != nil {
		s.comp = sc.comp
	}
	if len(s.index) == 0 {
		s.index = []string{"index.html"}
	}
	for _, idx := range s.index {
		if strings.ContainsAny(idx, "/\\\x00") || idx == "" || idx == "." || idx == ".." {
			return nil, fmt.Errorf("static: index %q must be a file name", idx)
		}
	}
	for _, p := range s.hidden {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("static: hidden %q: %w", p, err)
		}
	}
	sr, err := openStaticRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	s.root.Store(sr)
	s.checkAt.Store(time.Now().Add(rootRecheck).UnixNano())
	return s, nil
}

func openStaticRoot(dir string) (*staticRoot, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	d, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, err
	}
	fi, err := d.Stat()
	if err != nil {
		d.Close()
		r.Close()
		return nil, err
	}
	return &staticRoot{root: r, fi: fi, dir: d}, nil
}

// current returns the root to serve from, reopening it at most once per
// rootRecheck when the configured path now names another directory. A
// replaced root is left to its finalizer: requests still reading through it
// keep working.
func (s *static) current() *staticRoot {
	cur := s.root.Load()
	now := time.Now().UnixNano()
	at := s.checkAt.Load()
	if now < at || !s.checkAt.CompareAndSwap(at, now+int64(rootRecheck)) {
		return cur
	}
	fi, err := os.Stat(s.dir)
	if err != nil || os.SameFile(fi, cur.fi) {
		// A vanished path keeps the last good directory serving.
		return cur
	}
	sr, err := openStaticRoot(s.dir)
	if err != nil {
		s.log.Warn("static root reopen failed", "root", s.dir, "err", err)
		return cur
	}
	s.root.Store(sr)
	cur.cache.close()
	s.log.Info("static root changed, reopened", "root", s.dir)
	return sr
}

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = hdrAllowGetHead
		writeStatus(w, http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if !strings.HasPrefix(p, s.prefix) {
		writeStatus(w, http.StatusNotFound)
		return
	}
	rest := p[len(s.prefix):]
	if !cleanStaticPath(rest, r.URL.RawPath) {
		writeStatus(w, http.StatusBadRequest)
		return
	}
	if s.isHidden(rest) {
		writeStatus(w, http.StatusNotFound)
		return
	}
	name := strings.Trim(rest, "/")
	if name == "" {
		name = "."
	}
	wantDir := rest == "" || strings.HasSuffix(rest, "/")

	root := s.current().root
	f, fi, code := s.open(root, name)
	served := name
	if code == 0 && !fi.IsDir() && wantDir {
		// "file.txt/" names a directory that is not there.
		f.Close()
		code = http.StatusNotFound
	}
	if code == 0 && fi.IsDir() {
		f.Close()
		// No listings: a directory without its index is as absent as a
		// missing file, and the slash redirect below waits until the index
		// is known to exist so it does not reveal bare directories either.
		f, fi, served, code = s.openIndex(root, name)
		if code == 0 && !wantDir {
			f.Close()
			redirectSlash(w, r)
			return
		}
	}
	if code == http.StatusNotFound && s.fallback != "" {
		f, fi, code = s.open(root, s.fallback)
		served = s.fallback
		if code == 0 && fi.IsDir() {
			f.Close()
			code = http.StatusNotFound
		}
	}
	if code != 0 {
		writeStatus(w, code)
		return
	}
	defer f.Close()

	if (s.comp != nil || s.precompressed) && s.serveEncoded(w, r, root, served, f, fi) {
		return
	}
	w.Header()["Etag"] = []string{etag(fi)}
	// f is an *os.File so that net/http can hand the body to sendfile(2).
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// openIndex opens the first of the index files in directory dir that is
// a file.
func (s *static) openIndex(root *os.Root, dir string) (*os.File, fs.FileInfo, string, int) {
	code := http.StatusNotFound
	for _, idx := range s.index {
		if dir != "." {
			idx = dir + "/" + idx
		}
		var f *os.File
		var fi fs.FileInfo
		f, fi, code = s.open(root, idx)
		if code == 0 && fi.IsDir() {
			f.Close()
			code = http.StatusNotFound
		}
		if code != http.StatusNotFound {
			return f, fi, idx, code
		}
	}
	return nil, nil, "", code
}

// isHidden reports whether rest, the path under the root, has a segment
// a hidden pattern matches; "/.well-known/" at the top is never hidden
// (ACME challenges, security.txt).
func (s *static) isHidden(rest string) bool {
	if len(s.hidden) == 0 {
		return false
	}
	first := true
	for len(rest) > 0 {
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if seg == "" {
			continue
		}
		if first && seg == ".well-known" {
			first = false
			continue
		}
		first = false
		for _, p := range s.hidden {
			if ok, _ := path.Match(p, seg); ok {
				return true
			}
		}
	}
	return false
}

// open opens name under root. It returns a non-zero status when the name
// must not be served: absent, refused, outside the root, or neither a
// regular file nor a directory.
func (s *static) open(root *os.Root, name string) (*os.File, fs.FileInfo, int) {
	// O_NONBLOCK: opening a FIFO that was left in the tree must not block the
	// request forever; it is refused below, and regular files ignore the flag.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, s.openStatus(name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, s.openStatus(name, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, nil, http.StatusNotFound
	}
	return f, fi, 0
}

func (s *static) openStatus(name string, err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	case OutOfFDs(err):
		s.fds.Note(s.log, "static file", err)
		return http.StatusServiceUnavailable
	default:
		// Escapes from the root and symlink loops land here; they look
		// like absent files to the client.
		s.log.Debug("static open refused", "name", name, "err", err)
		return http.StatusNotFound
	}
}

// cleanStaticPath reports whether rest, the decoded path after the route
// prefix, may name a file: no NUL, no backslash (a separator elsewhere), no
// dot segment, and no encoded slash in the raw path (a "%2f" would otherwise
// join two path segments the client sent as one).
func cleanStaticPath(rest, rawPath string) bool {
	if strings.ContainsAny(rest, "\x00\\") || hasDotSegment(rest) {
		return false
	}
	if rawPath != "" {
		for i := 0; i+2 < len(rawPath); i++ {
			if rawPath[i] == '%' && rawPath[i+1] == '2' && (rawPath[i+2] == 'f' || rawPath[i+2] == 'F') {
				return false
			}
		}
	}
	return true
}

// etag is a strong validator from the modification time and size, like
// nginx's: it changes whenever a deploy rewrites the file.
func etag(fi fs.FileInfo) string {
	var buf [40]byte
	return string(appendEtag(buf[:0], fi.ModTime(), fi.Size()))
}
