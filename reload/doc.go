// Package reload turns config file changes and manual triggers (SIGHUP, `hfork -s reload`)
// into one stream of reload requests for the engine. It decides nothing: it never parses or
// validates the config, and it never learns whether a reload worked. That is the engine's
// answer, given on Request.Reply.
//
// The engine owns one Watcher and reads it in its loop:
//
//	w, err := reload.New(reload.Options{Path: "server.hcl", Watch: true, Debounce: 250 * time.Millisecond, Log: log})
//	...
//	case req := <-w.C():
//		err := reloadFrom(path)     // read, parse, validate, plan, apply
//		if req.Reply != nil {
//			req.Reply <- err
//		}
//		w.SetOptions(cfg.Reload.Watch, cfg.Reload.Debounce)
//
// How a change is seen: the file's directory is watched, never the file, because editors
// and `mv` replace the directory entry and a watch on the old inode would go quiet. Every
// symlink on the way to the real file is followed and its directory watched too, so a
// Kubernetes ConfigMap update (a new timestamped directory, then `..data` renamed over) and
// an edit through another name of the same file are both changes. Events on any of those
// entries start a quiet period of Debounce; when it ends the file is read, then read again
// max(Debounce, 500ms) later, and a request goes out only if both reads agree and their bytes
// differ from those last announced. The second read is for files rewritten in place: a
// writer that pauses between two writes leaves a first part that may parse on its own. An
// event between the two reads starts the quiet period over. Only a rename-save is atomic;
// a writer pausing for longer than both intervals can still be read half-written.
//
// Invariants:
//
//   - One request per change of bytes. Touch, chmod and rewriting the same content send
//     nothing; a burst of events (vim's rename, create, write, chmod, delete) sends one.
//   - Every Trigger is delivered, once, in the order made, however long the engine is busy;
//     requests still queued at Close get ErrClosed on their Reply. Trigger never waits for
//     the engine.
//   - At most one file request waits undelivered: it has no Reply, and the engine reads the
//     file when it handles it, so a second would only repeat the same reload.
//   - Watching stops only by SetOptions(false, ...) or Close. A removed file, a replaced
//     directory entry or an fsnotify error is logged and watching goes on; a file missing
//     when the quiet period ends sends nothing, and its return with new bytes is a change.
//   - If watching cannot start, manual triggers still work.
//   - Two goroutines, both gone when Close returns: the watch loop owns fsnotify, the timer
//     and the hash; the queue owns the pending requests and does no I/O.
//   - It imports nothing from hfork: the arrows point at it, never from it.
//
// Limits: the directory named in Path is taken as fixed; if it is itself removed or swapped
// for another, watching resumes only through SetOptions. A file whose bytes are the same
// after it was removed and put back is not a change.
package reload
