package reload

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// loop owns everything about watching: the fsnotify watcher, the debounce timer and the hash
// of the bytes last announced. Only its goroutine touches it after New returns.
type loop struct {
	path     string // absolute, as configured (not resolved: the engine reads this name)
	reason   string
	log      *slog.Logger
	in       chan<- item
	done     <-chan struct{}
	debounce time.Duration

	fs      *fsnotify.Watcher // nil while not watching
	deps    deps
	timer   *time.Timer
	pending bool
	// settling: the quiet period is over and the file was read once, into
	// candidate; when the timer fires again it is read a second time, and
	// announced only if both reads agree.
	settling  bool
	candidate [sha256.Size]byte
	last      [sha256.Size]byte
	known     bool  // last holds a hash; false while the file has never been read
	closeErr  error // from closing fs on the way out; read by Close after the loop returns
}

func newLoop(path string, debounce time.Duration, log *slog.Logger, in chan<- item, done <-chan struct{}) *loop {
	t := time.NewTimer(time.Hour)
	t.Stop() // since Go 1.23 a stopped timer delivers nothing stale
	return &loop{
		path:     path,
		reason:   "file changed: " + filepath.Base(path),
		log:      log,
		in:       in,
		done:     done,
		debounce: debounce,
		timer:    t,
	}
}

func (l *loop) run(setc <-chan setOpts) {
	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		if l.fs != nil {
			events, errs = l.fs.Events, l.fs.Errors
		}
		var fire <-chan time.Time
		if l.pending {
			fire = l.timer.C
		}
		select {
		case ev, ok := <-events:
			if !ok {
				l.lost()
				continue
			}
			l.event(ev)
		case err, ok := <-errs:
			if !ok {
				l.lost()
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were dropped, ours among them perhaps: look at the bytes.
				l.arm()
			}
			l.log.Warn("reload: file watcher error; manual reloads still work", "file", l.path, "err", err)
		case <-fire:
			l.pending = false
			if l.settling {
				l.confirm()
			} else {
				l.check()
			}
		case s := <-setc:
			s.reply <- l.set(s.watch, s.debounce)
		case <-l.done:
			l.closeErr = l.stop()
			return
		}
	}
}

// lost handles fsnotify ending on its own. Its channels are dropped so the select does not
// spin on them; SetOptions(true, ...) starts a new watcher.
func (l *loop) lost() {
	l.log.Warn("reload: file watcher stopped; manual reloads still work", "file", l.path)
	_ = l.fs.Close()
	l.fs = nil
}

// start watches the directories the path depends on and takes the current bytes as the
// baseline. The watches go in before the read, so a change in between is still an event.
func (l *loop) start() error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("start watching %s: %w", l.path, err)
	}
	l.fs = fw
	if err := l.sync(); err != nil {
		l.fs = nil
		_ = fw.Close()
		return err
	}
	l.last, l.known = l.hash()
	return nil
}

func (l *loop) stop() error {
	l.timer.Stop()
	l.pending, l.settling = false, false
	if l.fs == nil {
		return nil
	}
	err := l.fs.Close()
	l.fs = nil
	if err != nil {
		return fmt.Errorf("stop watching %s: %w", l.path, err)
	}
	return nil
}

func (l *loop) set(watch bool, debounce time.Duration) error {
	l.debounce = debounce
	if l.pending {
		l.arm()
	}
	switch {
	case watch && l.fs == nil:
		return l.start()
	case watch:
		// Already watching: look again, so that a reload brings back a watch lost with a
		// removed directory.
		return l.sync()
	case l.fs != nil:
		return l.stop()
	}
	return nil
}

// sync points the watches at the directories the path depends on now. It runs whenever an
// entry was created, removed or renamed, because a symlink swap (a ConfigMap update) moves
// the real file to a directory nobody watched yet, and the old one is about to be deleted.
// Only the home directory failing is an error: the others fail when they race with a
// removal, and the removal is an event that brings us back here.
func (l *loop) sync() error {
	l.deps = resolve(l.path)
	have := map[string]bool{}
	for _, d := range l.fs.WatchList() {
		have[d] = true
	}
	var homeErr error
	for d := range l.deps.dirs {
		if have[d] {
			continue
		}
		if err := l.fs.Add(d); err != nil {
			if d == l.deps.home {
				homeErr = fmt.Errorf("watch %s: %w", d, err)
			} else {
				l.log.Debug("reload: cannot watch directory", "dir", d, "err", err)
			}
		}
	}
	for d := range have {
		if !l.deps.dirs[d] {
			// Fails when the directory is already gone, which removed the watch anyway.
			_ = l.fs.Remove(d)
		}
	}
	return homeErr
}

func (l *loop) event(ev fsnotify.Event) {
	if !l.deps.relevant(ev.Name) {
		return
	}
	l.log.Debug("reload: config file event", "file", l.path, "event", ev.String())
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if err := l.sync(); err != nil {
			l.log.Warn("reload: cannot watch config directory; manual reloads still work",
				"file", l.path, "err", err)
		}
	}
	l.arm()
}

// arm restarts the quiet period: a request goes out Debounce after the last event, and
// after the second read agrees with the first. An event while settling starts over.
func (l *loop) arm() {
	l.timer.Reset(l.debounce)
	l.pending, l.settling = true, false
}

// minSettle is the least time between the two reads of a changed file. Editors that save in
// place write in one go, but a script or a person appending by hand may pause between
// writes for longer than a debounce; a variable so tests run quickly.
var minSettle = 500 * time.Millisecond

// settleTime is the interval between the two reads: a debounce, and at least minSettle.
func (l *loop) settleTime() time.Duration {
	return max(l.debounce, minSettle)
}

// check runs when a burst is over. It sends a request only if the bytes differ from those
// last announced, so touch, chmod and rewriting the same content cost nothing, and a vim
// save that is seen as several bursts still yields one request.
func (l *loop) check() {
	if l.fs != nil {
		// Resolve again: the burst may have ended with a swap whose events came first.
		if err := l.sync(); err != nil {
			l.log.Warn("reload: cannot watch config directory; manual reloads still work",
				"file", l.path, "err", err)
		}
	}
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		// Mid-save, or removed for a while: the name stays watched and its return is an event.
		l.log.Debug("reload: config file is gone; waiting for it", "file", l.path)
		return
	}
	if err != nil {
		l.log.Warn("reload: cannot read config file", "file", l.path, "err", err)
		return
	}
	sum := sha256.Sum256(data)
	if l.known && sum == l.last {
		l.log.Debug("reload: config file bytes unchanged", "file", l.path)
		return
	}
	// A file rewritten in place can be read between two of its writer's writes, and its
	// first half may well parse: read again a little later before trusting it.
	l.candidate, l.settling, l.pending = sum, true, true
	l.timer.Reset(l.settleTime())
	l.log.Debug("reload: config file changed; reading it again before the reload", "file", l.path, "bytes", len(data))
}

// confirm is the second read. The reload is queued only when the bytes are those of the
// first read; otherwise the file is still being written, and this read becomes the first.
func (l *loop) confirm() {
	l.settling = false
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		l.log.Debug("reload: config file is gone; waiting for it", "file", l.path)
		return
	}
	if err != nil {
		l.log.Warn("reload: cannot read config file", "file", l.path, "err", err)
		return
	}
	sum := sha256.Sum256(data)
	if sum != l.candidate {
		l.candidate, l.settling, l.pending = sum, true, true
		l.timer.Reset(l.settleTime())
		l.log.Debug("reload: config file still being written; reading it again", "file", l.path, "bytes", len(data))
		return
	}
	if l.known && sum == l.last {
		return // changed and changed back
	}
	l.last, l.known = sum, true
	select {
	case l.in <- item{req: Request{Reason: l.reason}, file: true}:
		l.log.Debug("reload: config file changed; reload queued", "file", l.path, "bytes", len(data))
	case <-l.done:
	}
}

// hash reads the baseline; a missing or unreadable file has none, so any later content is
// a change.
func (l *loop) hash() ([sha256.Size]byte, bool) {
	data, err := os.ReadFile(l.path)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(data), true
}
