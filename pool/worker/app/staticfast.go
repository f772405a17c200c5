package app

import (
	"errors"
	"mime"
	"net/http"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// The static app's fast path opens files with openat2(2) beneath the
// root's directory fd: RESOLVE_BENEATH refuses "..", absolute symlinks and
// anything resolving outside, as os.Root does, in one syscall and without
// an *os.File. Kernels before 5.6 lack it; there net/http serves every
// static request.
var openat2OK = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY})
	if err != nil {
		return false
	}
	rawsys.Close(fd)
	return true
})

func (s *static) fastOK() bool { return openat2OK() }

// serveFast is ServeHTTP for a plain GET or HEAD: the same answers, status
// by status, without Range or conditional requests, which it declines.
func (s *static) serveFast(req *FastRequest, resp *FastResponse) bool {
	if req.Conditional {
		return false
	}
	p := req.Path
	if !strings.HasPrefix(p, s.prefix) {
		statusFast(resp, http.StatusNotFound)
		return true
	}
	rest := p[len(s.prefix):]
	if !cleanStaticPath(rest, "") {
		statusFast(resp, http.StatusBadRequest)
		return true
	}
	if s.isHidden(rest) {
		statusFast(resp, http.StatusNotFound)
		return true
	}
	name := strings.Trim(rest, "/")
	if name == "" {
		name = "."
	}
	wantDir := rest == "" || strings.HasSuffix(rest, "/")

	// A replaced root's fd closes when it is collected: sr stays reachable
	// until the last openat2 below.
	sr := s.current()
	defer runtime.KeepAlive(sr)
	dirfd := int(sr.dir.Fd())
	cacheable := s.comp == nil && !s.precompressed
	if cacheable {
		if e := sr.cache.lookup(dirfd, rest, s.log); e != nil {
			resp.Status, resp.Head, resp.Body = http.StatusOK, e.head, e.body
			return true
		}
	}
	fd, st, code := s.openFast(dirfd, name)
	base := name
	if code == 0 && st.Mode&unix.S_IFMT != unix.S_IFDIR && wantDir {
		rawsys.Close(fd)
		code = http.StatusNotFound
	}
	if code == 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		rawsys.Close(fd)
		fd, st, base, code = s.openIndexFast(dirfd, name)
		// Only the first index name's answer is kept: a cache hit checks
		// that file, not the absence of those before it.
		cacheable = cacheable && code == 0 && base == path.Join(name, s.index[0])
		if code == 0 && !wantDir {
			rawsys.Close(fd)
			redirectSlashFast(req, resp)
			return true
		}
	}
	if code == http.StatusNotFound && s.fallback != "" {
		cacheable = false
		fd, st, code = s.openFast(dirfd, s.fallback)
		base = s.fallback
		if code == 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			rawsys.Close(fd)
			code = http.StatusNotFound
		}
	}
	if code < 0 {
		return false
	}
	if code != 0 {
		statusFast(resp, code)
		return true
	}

	if s.comp != nil || s.precompressed {
		ctype, ok := contentTypeFast(resp, fd, base)
		if !ok {
			rawsys.Close(fd)
			return false
		}
		return s.encodedFast(req, resp, dirfd, fd, &st, base, ctype)
	}
	head := sr.cache.headFor(base, &st)
	made := head == nil
	if made {
		ctype, ok := contentTypeFast(resp, fd, base)
		if !ok {
			rawsys.Close(fd)
			return false
		}
		s.fileHeadFast(resp, &st, ctype, "", -1, false)
		head = resp.Head
	}
	resp.Status, resp.Head = http.StatusOK, head
	if cacheable {
		if e := sr.cache.keep(dirfd, rest, base, fd, &st, head, s.settle, s.log); e != nil {
			rawsys.Close(fd)
			resp.Head, resp.Body = e.head, e.body
			return true
		}
	}
	if made {
		sr.cache.keepHead(base, &st, head, s.settle)
	}
	resp.FileFD, resp.FileSize = fd, st.Size
	return true
}

// contentTypeFast is what http.ServeContent sends for a whole file: the
// type by extension or else sniffed. ok is false when the file cannot be
// read.
func contentTypeFast(resp *FastResponse, fd int, base string) (ctype string, ok bool) {
	ctype = mime.TypeByExtension(filepath.Ext(base))
	if ctype == "" {
		// resp's own buffer: one on the stack would escape through
		// DetectContentType, an allocation per request.
		n, err := rawsys.Pread(fd, resp.sniff[:], 0)
		if err != nil {
			return "", false
		}
		ctype = http.DetectContentType(resp.sniff[:max(n, 0)])
	}
	return ctype, true
}

// fileHeadFast builds the head of a whole-file answer: the file st
// describes as it is, or, with enc, its coding of length size.
func (s *static) fileHeadFast(resp *FastResponse, st *unix.Stat_t, ctype, enc string, size int64, vary bool) {
	mtime := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	b := appendStatusLine(resp.scratch[:0], http.StatusOK)
	b = append(b, "Accept-Ranges: bytes\r\n"...)
	if enc != "" {
		b = append(b, "Content-Encoding: "...)
		b = append(b, enc...)
		b = append(b, "\r\n"...)
	} else {
		size = st.Size
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, size, 10)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nEtag: "...)
	if enc != "" {
		b = append(b, "W/"...)
	}
	b = appendEtag(b, mtime, st.Size)
	b = append(b, "\r\n"...)
	if !mtime.IsZero() && !mtime.Equal(time.Unix(0, 0)) {
		b = append(b, "Last-Modified: "...)
		b = mtime.UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
	}
	if vary {
		b = append(b, "Vary: Accept-Encoding\r\n"...)
	}
	resp.scratch = b
	resp.Status, resp.Head = http.StatusOK, b
}

// openIndexFast is openIndex for the fast path; it also returns the
// index file's path.
func (s *static) openIndexFast(dirfd int, dir string) (int, unix.Stat_t, string, int) {
	var st unix.Stat_t
	code := http.StatusNotFound
	for _, idx := range s.index {
		name := idx
		if dir != "." {
			name = dir + "/" + idx
		}
		var fd int
		fd, st, code = s.openFast(dirfd, name)
		if code == 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			rawsys.Close(fd)
			code = http.StatusNotFound
		}
		if code != http.StatusNotFound {
			return fd, st, name, code
		}
	}
	return -1, st, "", code
}

// openFast opens name beneath dirfd and stats it: the fd and its stat, or
// the status static.open gives for the failure (0 on success), or -1 when
// net/http should serve the request instead.
func (s *static) openFast(dirfd int, name string) (int, unix.Stat_t, int) {
	var st unix.Stat_t
	how := unix.OpenHow{
		// O_NONBLOCK: a FIFO left in the tree must not block the open.
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	var err error
	for {
		fd, err = rawsys.Openat2(dirfd, name, &how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return -1, st, -1
		}
		return -1, st, s.openStatus(name, err)
	}
	if err := rawsys.Fstat(fd, &st); err != nil {
		rawsys.Close(fd)
		return -1, st, s.openStatus(name, err)
	}
	if m := st.Mode & unix.S_IFMT; m != unix.S_IFREG && m != unix.S_IFDIR {
		rawsys.Close(fd)
		return -1, st, http.StatusNotFound
	}
	return fd, st, 0
}

// appendEtag is etag for the fast path.
func appendEtag(b []byte, mtime time.Time, size int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, mtime.UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 16)
	return append(b, '"')
}
