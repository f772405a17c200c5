// Package app is what a built-in worker serves: the virtual hosts of one
// listener and the router over each one's routes (hosts.go, router.go),
// the built-in apps (respond, static, proxy, redirect, status), what the
// listener, host and route levels do to every answer (scope.go: the
// header policy, error pages and compression) and the access log. It
// runs inside worker processes only and reads nothing but the hclconfig
// values the master handed the worker.
//
// Invariants:
//
//   - New does all the work a configuration implies (sorting routes,
//     canonical headers, body bytes, parsed upstreams, the static root
//     opened, header policies folded, error pages read, respond bodies
//     compressed); a request reads no configuration and allocates little.
//   - The Host header picks the router: exact name, then the longest
//     wildcard, then the listener's own routes. One matcher (Hosts)
//     decides, for serving and for the worker's metrics alike, so a
//     request is counted under the host that served it. Within it the longest
//     matching prefix wins, whatever order the routes come in. A path
//     with "." or ".." segments is refused with 400 before routing.
//   - A route's scope applies to every answer under it, on net/http and
//     on the fast path alike, with the same result: the header policy
//     last, after the app and after compression.
//   - A compressed body is made once: respond bodies at New, static files
//     on first request into a cache bounded at cacheMax bytes per worker;
//     only streamed (proxied, or too large to keep) answers are
//     compressed as they go. Range requests, already-encoded answers and
//     bodies below min_size are never compressed.
//   - A static app never serves a file outside its root: every lookup goes
//     through os.Root, which refuses "..", absolute symlinks and symlinks
//     leading out; NUL, backslashes and encoded slashes are refused before
//     that. Directories are served by their index file only; without one
//     they are 404, never listed.
//   - Nothing between net/http and an *os.File hides io.ReaderFrom, so
//     static files go out by sendfile(2), access log or scope or not.
//   - The fast path keeps the whole answers of small static files
//     (staticcache.go), bounded per root and per worker, and serves one
//     only after a stat of every component of its path, symlinks not
//     followed, finds the same directories and the same file (inode, size,
//     mtime and ctime to the nanosecond) as when it was kept. Paths with
//     symlinks, fallback answers and compressing routes are never kept, so
//     a kept answer is always what openat2 beneath the root would serve.
//   - A proxy app never hangs on a dead upstream: dialing is bounded, and
//     the client gets 502 (504 on a timeout) with one log line. An upstream
//     answering 101 calls Upgraded, so the worker stops counting the tunnel
//     as an in-flight request.
//   - A proxy with request_buffering contacts no upstream before the whole
//     body is in hand (reqbuffer.go): a body it cannot read is answered
//     413, 408, 400 or 500 by hfork alone. Expect is never passed on. A
//     body's memory goes back to its pool only once every reader the
//     transport was given is closed, so no upstream is ever sent another
//     request's bytes; a body's temporary file has no name from the moment
//     it is made.
//   - The access log issues no syscall per request. Lines reach the file
//     within a second, whole (one write never splits a line, so workers
//     can share an O_APPEND file), and after Reopen returns none goes to
//     the old file.
//   - The status app shows only what the master pushed (PublishStatus); it
//     computes nothing and answers 503 to JSON clients until the first push.
package app
