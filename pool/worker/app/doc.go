// Package app is what a built-in worker serves: the router over one
// listener's routes, the built-in apps (respond, static, proxy, redirect,
// status) and the access log. It runs inside worker processes only and
// reads nothing but the hclconfig values the master handed the worker.
//
// Invariants:
//
//   - New does all the work a configuration implies (sorting routes,
//     canonical headers, body bytes, parsed upstreams, the static root
//     opened); a request reads no configuration and allocates little.
//   - The longest matching prefix wins, whatever order the routes come in.
//     A path with "." or ".." segments is refused with 400 before routing.
//   - A static app never serves a file outside its root: every lookup goes
//     through os.Root, which refuses "..", absolute symlinks and symlinks
//     leading out; NUL, backslashes and encoded slashes are refused before
//     that. Directories are served by their index file only; without one
//     they are 404, never listed.
//   - Nothing between net/http and an *os.File hides io.ReaderFrom, so
//     static files go out by sendfile(2), access log or not.
//   - A proxy app never hangs on a dead upstream: dialing is bounded, and
//     the client gets 502 (504 on a timeout) with one log line. An upstream
//     answering 101 calls Upgraded, so the worker stops counting the tunnel
//     as an in-flight request.
//   - The access log issues no syscall per request. Lines reach the file
//     within a second, whole (one write never splits a line, so workers
//     can share an O_APPEND file), and after Reopen returns none goes to
//     the old file.
//   - The status app shows only what the master pushed (PublishStatus); it
//     computes nothing and answers 503 to JSON clients until the first push.
package app
