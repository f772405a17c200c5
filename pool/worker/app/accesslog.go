package app

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// Access log buffering: lines collect in memory and reach the file once a
// second or when the buffer fills, so serving a request costs no syscall.
// A worker killed with SIGKILL loses at most that second.
const (
	accessBufSize    = 64 << 10
	accessFlushEvery = time.Second
)

type accessFormat int

const (
	formatCombined accessFormat = iota
	formatJSON
)

// AccessLog writes one line per request to a file or stdout. A nil
// *AccessLog is a valid, disabled log: Wrap returns the handler unchanged
// and Reopen and Close do nothing.
//
// Every write(2) carries whole lines, so the workers of one listener can
// share one O_APPEND file without tearing each other's lines.
type AccessLog struct {
	path   string // "" for stdout
	format accessFormat
	now    func() time.Time // a seam for tests

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	closed bool

	times atomic.Pointer[timeCache]
	stop  chan struct{}
	done  chan struct{}
}

// OpenAccessLog opens the access log cfg describes: nil when cfg.File is
// empty, stdout for "-", otherwise the file, appended to and created if
// missing (its directory must exist).
func OpenAccessLog(cfg hclconfig.AccessLog) (*AccessLog, error) {
	if cfg.File == "" {
		return nil, nil
	}
	a := &AccessLog{now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	switch cfg.Format {
	case "", "combined":
		a.format = formatCombined
	case "json":
		a.format = formatJSON
	default:
		return nil, fmt.Errorf("open access log: unknown format %q", cfg.Format)
	}
	if cfg.File == "-" {
		a.f = os.Stdout
	} else {
		a.path = cfg.File
		f, err := openAccessFile(a.path)
		if err != nil {
			return nil, fmt.Errorf("open access log: %w", err)
		}
		a.f = f
	}
	a.w = bufio.NewWriterSize(a.f, accessBufSize)
	go a.flusher()
	return a, nil
}

func openAccessFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

func (a *AccessLog) flusher() {
	defer close(a.done)
	t := time.NewTicker(accessFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.mu.Lock()
			if !a.closed && a.w.Buffered() > 0 {
				a.flushLocked()
			}
			a.mu.Unlock()
		}
	}
}

// flushLocked writes the buffer out. On failure the buffered lines are
// dropped: a bufio.Writer stays broken after one error, and a full disk
// must not silence the log for good once space returns.
func (a *AccessLog) flushLocked() error {
	err := a.w.Flush()
	if err != nil {
		a.w.Reset(a.f)
		slog.Warn("access log write failed", "file", a.name(), "err", err)
	}
	return err
}

func (a *AccessLog) name() string {
	if a.path == "" {
		return "-"
	}
	return a.path
}

// write appends one formatted line, flushing first when it would not fit
// so that no line is split across two writes.
func (a *AccessLog) write(line []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if len(line) > a.w.Available() && a.w.Buffered() > 0 {
		a.flushLocked()
	}
	if _, err := a.w.Write(line); err != nil {
		a.w.Reset(a.f)
		slog.Warn("access log write failed", "file", a.name(), "err", err)
	}
}

// Reopen flushes what is buffered into the current file, then reopens the
// path, for logrotate's rename-then-signal: once it returns, every later
// line goes to the new file and none was lost. If the path cannot be
// opened, the log keeps writing to the old file and Reopen says why.
func (a *AccessLog) Reopen() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("reopen access log: closed")
	}
	ferr := a.flushLocked()
	if a.path == "" {
		return ferr
	}
	f, err := openAccessFile(a.path)
	if err != nil {
		return fmt.Errorf("reopen access log: %w", err)
	}
	old := a.f
	a.f = f
	a.w.Reset(f)
	if err := old.Close(); err != nil {
		return fmt.Errorf("reopen access log: close old file: %w", err)
	}
	return ferr
}

// Close flushes and closes the log. Lines of requests that finish later
// are dropped, so the worker closes it after its drain.
func (a *AccessLog) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	err := a.flushLocked()
	if a.path != "" {
		if cerr := a.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close access log: %w", cerr)
		}
	}
	a.mu.Unlock()
	close(a.stop)
	<-a.done
	return err
}

// linePool holds line buffers so formatting a request allocates nothing.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Wrap returns h with each request logged when it finishes (also when h
// panics, as ReverseProxy does on a broken client connection).
func (a *AccessLog) Wrap(h http.Handler) http.Handler {
	if a == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := newRecorder(w)
		start := a.now()
		defer a.finish(rec, r, start)
		h.ServeHTTP(rec, r)
	})
}

func (a *AccessLog) finish(rec *recorder, r *http.Request, start time.Time) {
	a.Log(&Entry{
		Remote:     r.RemoteAddr,
		Method:     r.Method,
		RequestURI: requestURI(r),
		Path:       r.URL.Path,
		RawQuery:   r.URL.RawQuery,
		Proto:      r.Proto,
		Host:       r.Host,
		Referer:    firstHeader(r, "Referer"),
		UserAgent:  firstHeader(r, "User-Agent"),
		RequestID:  firstHeader(r, "X-Request-Id"),
		Status:     rec.statusCode(),
		Bytes:      rec.bodyBytes(r),
		Start:      start,
		End:        a.now(),
	})
	rec.release()
}

// Log writes e's line. It is what a server that is not net/http calls; a
// nil *AccessLog logs nothing.
func (a *AccessLog) Log(e *Entry) {
	if a == nil {
		return
	}
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	if a.format == formatJSON {
		b = a.appendJSON(b, e)
	} else {
		b = a.appendCombined(b, e)
	}
	a.write(b)
	// A rare huge line must not pin its buffer in the pool.
	if cap(b) <= 16<<10 {
		*bp = b
		linePool.Put(bp)
	}
}

// Now is the log's clock, for a caller that fills in an Entry.
func (a *AccessLog) Now() time.Time {
	if a == nil {
		return time.Now()
	}
	return a.now()
}
