package app

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// The fast path keeps the whole answers (head and body) of small files
// it served, so the next request for one costs a stat of its path instead
// of an open, a stat, a read or sendfile and a close, and goes out in one
// write with its head. Every hit is checked against the file as it is
// now: statx of each component of its path beneath the root's directory
// fd, without following symlinks, must find the same directories and the
// same file (device, inode, size, mtime and ctime to the nanosecond).
//
// What the check can see: a file rewritten, truncated, replaced by rename,
// deleted, or made a symlink, and any directory on its path replaced (by a
// symlink out of the root too: the stat sees the link, not the directory
// it named). What it cannot see is a write in the same tick of the
// filesystem's clock as the ctime it recorded; so a file is kept only
// once its ctime is cacheSettle old, and any later change moves its ctime.
// Only paths without symlinks are kept, so the stat walk and openat2's
// RESOLVE_BENEATH see the same names; hidden files are refused before
// the cache is asked, as before; index files only when the first index
// name answers; fallback answers and compressed routes never.
//
// Of every other file the fast path opens it keeps the head it made
// (type, length, Etag, Last-Modified), checked against the fstat that
// follows each open: an answer by sendfile formats nothing.
const (
	cacheFileMax = 32 << 10 // a larger file is sent by sendfile
	cacheEntries = 1024     // per root
	cacheHeads   = 1024     // per root
	cacheSettle  = time.Second
)

// cacheBudget bounds the bytes all static roots of the worker keep.
const cacheBudget = 4 << 20

var cacheBytes atomic.Int64 // kept by every root's cache together

// staticCache is one root's kept answers, by the path after the route's
// prefix as the request gave it.
type staticCache struct {
	mu     sync.Mutex
	m      map[string]*cachedFile
	bytes  int64
	closed bool // the root was replaced: keep nothing more
	// heads holds the heads of files (by their path beneath the root)
	// whose bodies are not kept: the file's own fstat after its open
	// checks one, so any file may have one.
	heads map[string]*cachedHead
	hits  atomic.Int64
}

// cachedFile is one kept answer; it is never changed once made.
type cachedFile struct {
	path string    // the file beneath the root
	dirs []inodeID // each directory on path, outermost first
	file fileStamp // the file itself
	head []byte    // FastResponse.Head
	body []byte    // the whole file
	size int64     // what the entry counts against the budgets
}

type inodeID struct{ dev, ino uint64 }

// fileStamp is what a change to a file changes.
type fileStamp struct {
	id           inodeID
	size         int64
	mtime, ctime unix.StatxTimestamp
}

const statxMask = unix.STATX_TYPE | unix.STATX_INO | unix.STATX_SIZE | unix.STATX_MTIME | unix.STATX_CTIME

func idOf(sx *unix.Statx_t) inodeID {
	return inodeID{dev: unix.Mkdev(sx.Dev_major, sx.Dev_minor), ino: sx.Ino}
}

func stampOf(sx *unix.Statx_t) fileStamp {
	return fileStamp{id: idOf(sx), size: int64(sx.Size), mtime: sx.Mtime, ctime: sx.Ctime}
}

// lstatBeneath is statx of name beneath dirfd, not following a final
// symlink. AT_STATX_FORCE_SYNC: a network filesystem asks its server, as
// an open would, rather than answering from attributes it cached; local
// filesystems ignore it.
func lstatBeneath(dirfd int, name string, sx *unix.Statx_t) bool {
	for {
		err := rawsys.Statx(dirfd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT|unix.AT_STATX_FORCE_SYNC, statxMask, sx)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// component returns the end of the component of path that starts at i,
// and whether it is the last one.
func component(path string, i int) (int, bool) {
	if j := strings.IndexByte(path[i:], '/'); j >= 0 {
		return i + j, false
	}
	return len(path), true
}

// valid reports whether e still describes the file beneath dirfd.
func (e *cachedFile) valid(dirfd int) bool {
	var sx unix.Statx_t
	for i, n := 0, 0; ; n++ {
		end, last := component(e.path, i)
		if !lstatBeneath(dirfd, e.path[:end], &sx) {
			return false
		}
		if last {
			return n == len(e.dirs) && sx.Mode&unix.S_IFMT == unix.S_IFREG && stampOf(&sx) == e.file
		}
		if n >= len(e.dirs) || sx.Mode&unix.S_IFMT != unix.S_IFDIR || idOf(&sx) != e.dirs[n] {
			return false
		}
		i = end + 1
	}
}

// lookup returns the answer kept for key if it is still true, dropping
// it if not.
func (c *staticCache) lookup(dirfd int, key string, log *slog.Logger) *cachedFile {
	c.mu.Lock()
	e := c.m[key]
	c.mu.Unlock()
	if e == nil {
		return nil
	}
	if e.valid(dirfd) {
		c.hits.Add(1)
		return e
	}
	c.mu.Lock()
	if c.m[key] == e {
		c.drop(key, e)
	}
	c.mu.Unlock()
	if log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("static cache drops a changed file", "path", e.path)
	}
	return nil
}

func (c *staticCache) drop(key string, e *cachedFile) {
	delete(c.m, key)
	c.bytes -= e.size
	cacheBytes.Add(-e.size)
}

// keep makes an entry for the file open as fd with stat st, whose answer
// head is head, if it may be kept; it returns nil when not.
func (c *staticCache) keep(dirfd int, key, path string, fd int, st *unix.Stat_t, head []byte, settle time.Duration, log *slog.Logger) *cachedFile {
	if st.Size > cacheFileMax {
		return nil
	}
	if ct := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); time.Since(ct) < settle {
		return nil
	}
	e := &cachedFile{path: strings.Clone(path)}
	var sx unix.Statx_t
	for i := 0; ; {
		end, last := component(path, i)
		if !lstatBeneath(dirfd, path[:end], &sx) {
			return nil
		}
		m := sx.Mode & unix.S_IFMT
		if last && m == unix.S_IFREG {
			e.file = stampOf(&sx)
			break
		}
		if last || m != unix.S_IFDIR {
			return nil // a symlink on the way: openat2's walk is not the stat's
		}
		e.dirs = append(e.dirs, idOf(&sx))
		i = end + 1
	}
	// The walk must have ended at the very file that was opened, as it was
	// when its head was made.
	if e.file.id.ino != st.Ino ||
		e.file.id.dev != st.Dev || e.file.size != st.Size ||
		e.file.mtime.Sec != st.Mtim.Sec || int64(e.file.mtime.Nsec) != st.Mtim.Nsec ||
		e.file.ctime.Sec != st.Ctim.Sec || int64(e.file.ctime.Nsec) != st.Ctim.Nsec {
		return nil
	}
	e.body = make([]byte, st.Size)
	for n := 0; n < len(e.body); {
		k, err := rawsys.Pread(fd, e.body[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil || k <= 0 {
			return nil // truncated under us: the normal path says what happens
		}
		n += k
	}
	e.head = slices.Clone(head)
	e.size = int64(len(key) + len(e.path) + len(e.head) + len(e.body) + 16*len(e.dirs) + 128)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return e // served once, kept nowhere
	}
	if old := c.m[key]; old != nil {
		c.drop(key, old)
	}
	for k, old := range c.m {
		if len(c.m) < cacheEntries && cacheBytes.Load()+e.size <= cacheBudget {
			break
		}
		c.drop(k, old) // map order: an entry at random
	}
	if cacheBytes.Load()+e.size > cacheBudget {
		return e // other roots hold the budget
	}
	if c.m == nil {
		c.m = make(map[string]*cachedFile)
	}
	c.m[strings.Clone(key)] = e
	c.bytes += e.size
	cacheBytes.Add(e.size)
	if log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("static cache keeps a file", "path", e.path, "bytes", len(e.body), "entries", len(c.m), "cached", cacheBytes.Load())
	}
	return e
}

// Close lets go of the answers s keeps: a worker that swapped its routes
// closes the old ones (see Close), and the new routes keep their own.
func (s *static) Close() { s.root.Load().cache.close() }

// close empties the cache of a replaced root and keeps it empty.
func (c *staticCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for k, e := range c.m {
		c.drop(k, e)
	}
	for k, h := range c.heads {
		c.dropHead(k, h)
	}
}

// cachedHead is the answer head made for a file as its stat was then:
// the type (by name, or sniffed), the length, the Etag and Last-Modified.
type cachedHead struct {
	stamp statStamp
	head  []byte
	size  int64
}

type statStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func stampStat(st *unix.Stat_t) statStamp {
	return statStamp{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

// headFor returns the head kept for the file at path, open with stat st,
// if it was made for the file as it is.
func (c *staticCache) headFor(path string, st *unix.Stat_t) []byte {
	c.mu.Lock()
	h := c.heads[path]
	c.mu.Unlock()
	if h == nil || h.stamp != stampStat(st) {
		return nil
	}
	return h.head
}

// keepHead keeps head for the file at path with stat st, once the file
// has settled (a sniffed type depends on its content).
func (c *staticCache) keepHead(path string, st *unix.Stat_t, head []byte, settle time.Duration) {
	if time.Since(time.Unix(st.Ctim.Sec, st.Ctim.Nsec)) < settle {
		return
	}
	h := &cachedHead{stamp: stampStat(st), head: slices.Clone(head)}
	h.size = int64(len(path) + len(head) + 96)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if old := c.heads[path]; old != nil {
		c.dropHead(path, old)
	}
	for k, old := range c.heads {
		if len(c.heads) < cacheHeads && cacheBytes.Load()+h.size <= cacheBudget {
			break
		}
		c.dropHead(k, old)
	}
	if cacheBytes.Load()+h.size > cacheBudget {
		return
	}
	if c.heads == nil {
		c.heads = make(map[string]*cachedHead)
	}
	c.heads[strings.Clone(path)] = h
	c.bytes += h.size
	cacheBytes.Add(h.size)
}

func (c *staticCache) dropHead(path string, h *cachedHead) {
	delete(c.heads, path)
	c.bytes -= h.size
	cacheBytes.Add(-h.size)
}
