package reload

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// ErrClosed answers the Reply of a request that was still queued when the Watcher was
// closed, and of a Trigger made after Close.
var ErrClosed = errors.New("reload: watcher closed")

// Request asks the engine for one reload.
type Request struct {
	// Reason says what asked, for the log: "signal", "control", "file changed: server.hcl".
	Reason string
	// Reply, when not nil, receives the outcome of the reload. It should have room for one
	// value: whoever answers it (the engine, or Close) never blocks on it.
	Reply chan<- error
	// Manual is set on Trigger's requests (a signal, the control socket),
	// not on the file watch's: the engine restarts user code only for them.
	Manual bool
}

// Options configures a Watcher. Watch and Debounce can be changed later with SetOptions.
type Options struct {
	Path     string        // the config file; may be relative or a symlink
	Watch    bool          // send a request when the file's bytes change
	Debounce time.Duration // quiet time after the last event of a burst before the file is read
	Log      *slog.Logger  // nil discards
}

// Watcher merges file changes and manual triggers into the stream returned by C.
type Watcher struct {
	in   chan item      // to the queue goroutine
	out  chan Request   // C
	setc chan setOpts   // to the watch loop
	done chan struct{}  // closed by Close
	wg   sync.WaitGroup // the queue goroutine and the watch loop
	once sync.Once
	loop *loop
}

// item is a queued request; file requests carry no Reply, so pending ones can be merged.
type item struct {
	req  Request
	file bool
}

type setOpts struct {
	watch    bool
	debounce time.Duration
	reply    chan error
}

// New starts a Watcher for opts.Path. If the file cannot be watched, New logs a warning and
// returns a Watcher whose manual triggers work: a reload must stay possible when inotify is
// exhausted or the directory is missing. The error is only for unusable options.
func New(opts Options) (*Watcher, error) {
	if opts.Path == "" {
		return nil, errors.New("reload: config path is empty")
	}
	if opts.Debounce < 0 {
		return nil, fmt.Errorf("reload: negative debounce %s", opts.Debounce)
	}
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("reload: resolve config path: %w", err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		in:   make(chan item),
		out:  make(chan Request),
		setc: make(chan setOpts),
		done: make(chan struct{}),
	}
	w.loop = newLoop(abs, opts.Debounce, log, w.in, w.done)
	if opts.Watch {
		// Started here rather than in the goroutine so that a change made right after New
		// returns is already seen.
		if err := w.loop.start(); err != nil {
			log.Warn("reload: cannot watch config file; manual reloads still work",
				"file", abs, "err", err)
		}
	}
	w.wg.Add(2)
	go func() { defer w.wg.Done(); w.queue() }()
	go func() { defer w.wg.Done(); w.loop.run(w.setc) }()
	return w, nil
}

// C is the one stream of reload requests. It is closed after Close.
func (w *Watcher) C() <-chan Request { return w.out }

// Trigger queues a manual request. It returns as soon as the queue goroutine has taken the
// request, which never waits for the engine: requests are queued without bound and delivered
// in the order they were made. After Close, reply gets ErrClosed.
func (w *Watcher) Trigger(reason string, reply chan<- error) {
	select {
	case w.in <- item{req: Request{Reason: reason, Reply: reply, Manual: true}}:
	case <-w.done:
		answer(reply, ErrClosed)
	}
}

// SetOptions applies a reload{} block: start or stop watching, and the debounce used from
// now on. Resuming takes the current bytes as the baseline, since the engine calls this
// right after it applied them. If watching cannot start, the error says why and manual
// triggers keep working; calling again retries.
func (w *Watcher) SetOptions(watch bool, debounce time.Duration) error {
	if debounce < 0 {
		return fmt.Errorf("reload: negative debounce %s", debounce)
	}
	s := setOpts{watch: watch, debounce: debounce, reply: make(chan error, 1)}
	select {
	case w.setc <- s:
	case <-w.done:
		return ErrClosed
	}
	return <-s.reply
}

// Close stops watching, answers every request still queued with ErrClosed, waits for both
// goroutines to return and closes C. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.once.Do(func() {
		close(w.done)
		w.wg.Wait()
	})
	return w.loop.closeErr
}

// queue owns the pending requests. It does no I/O, so a Trigger waits only for a select
// turn. At most one file request is pending: it carries no reply, and the engine reads the
// file when it handles it, so a second one would only repeat the same reload.
func (w *Watcher) queue() {
	defer close(w.out)
	var q []item
	fileQueued := false
	for {
		var out chan<- Request
		var head Request
		if len(q) > 0 {
			out, head = w.out, q[0].req
		}
		select {
		case it := <-w.in:
			if it.file && fileQueued {
				continue
			}
			fileQueued = fileQueued || it.file
			q = append(q, it)
		case out <- head:
			if q[0].file {
				fileQueued = false
			}
			q[0] = item{}
			q = q[1:]
		case <-w.done:
			for _, it := range q {
				answer(it.req.Reply, ErrClosed)
			}
			return
		}
	}
}

// answer never blocks: a reply channel nobody reads must not hang the Watcher.
func answer(reply chan<- error, err error) {
	if reply == nil {
		return
	}
	select {
	case reply <- err:
	default:
	}
}
