// Package worker is what runs inside a built-in worker process (classes
// sync, thread and async): it takes its listener's sockets from the master,
// serves them under its class's limits, reports to the master over
// sd_notify, and leaves without losing a request.
//
// An async worker on plain HTTP with event_loop on serves its sockets from
// an event loop (internal/evloop, with its codec internal/h1 and its
// poller internal/poll): the loop accepts and answers the plain GET and
// HEAD requests of respond, static, redirect and proxy routes itself,
// and hands every other connection, with the bytes read so far, to
// net/http, which then serves it as it serves every connection of the
// other classes. The worker owns what the two share (loop.go's loopHost):
// the connection slots of worker_connections, the request count behind
// max_requests, the set of connections a drain watches, and the eviction
// count; the drain tells the loop to drain and waits for it to end.
//
// The master starts hfork's own binary with HFORK_WORKER=1, and cmd/hfork
// calls Main. Main reads the Spec from the control pipe, the sockets from
// LISTEN_FDS (fds 3..), the notify socket from NOTIFY_SOCKET, sets up
// logging and signals, builds the routes (package app), and hands all of
// it to Run. Run holds no OS effects of its own, so tests run a worker in
// process on loopback sockets.
//
// A TLS listener's worker holds its certificates in memory (a
// pool/internal/certset Set, the master's type too), picks one per
// handshake by SNI, and offers HTTP/2 by ALPN (not in the sync class). It
// never reads certificate or key files: the master sends the PEM in the
// Spec and, when the files changed, in a Command, which the worker takes
// without a restart and without failing a handshake.
//
// The listener's limits apply to every class:
// max_header_bytes (431), max_body_bytes (413), read_header_timeout (also
// the handshake's), read_timeout and write_timeout (between two writes,
// as nginx's send_timeout: sendtimeout.go). A worker whose
// worker_connections are all held closes its reusable connections
// (silent, idle, or with a head still incomplete), oldest first, as many
// as there are clients waiting in the accept queue (evict.go);
// max_connections_per_ip caps what one client address holds.
// Every HTTP/1 connection net/http serves, plain or TLS, reads through a
// framer (framing.go) that refuses, with 400 and a close, the request
// heads RFC 9112 says a server must refuse and net/http accepts, and
// drops header names with an underscore; a TLS listener's worker runs
// the handshakes itself for that (tlsframe.go). The sync class takes its
// one slot for a request only once its head arrived (classes.go).
//
// Signals: SIGTERM drains (see Run and the drain steps on worker.drain),
// SIGINT and SIGQUIT stop fast, SIGUSR1 reopens the access log.
//
// Notifications: READY=1 once serving; a heartbeat every second (a quarter
// of timeout when that is shorter, never under 100ms) with WATCHDOG=1 and
// the X_HFORK_* counters of package wire; X_HFORK_RECYCLE=1 once when
// max_requests (plus jitter) requests were served; STOPPING=1 when a drain
// or a stop begins.
//
// Invariants:
//
//   - A worker never reads the config file: the master hands it its
//     listener's resolved config in the Spec.
//   - A worker never opens a key file, and is not dumpable (set before the
//     Spec, which carries the keys, is read).
//   - A worker exits when its master is gone: EOF on the control pipe stops
//     it at once.
//   - A worker never shuts a listening socket down; it closes only its own
//     fd, so its siblings and the kernel's accept queue carry on.
//   - A drain never closes a connection that has a request in flight, nor
//     one on which a request has begun to arrive, before graceful_timeout;
//     nor one still moving bytes (evloop.Moved) before shutdown_timeout.
//   - net/http sees no byte of an HTTP/1 request head, plain or TLS,
//     before the framer checked all of it.
//   - Every connection, the loop's or net/http's, holds one slot of
//     worker_connections; a connection the loop hands over takes its slot
//     with it.
//   - A request is answered by one table of routes from its start to its
//     end, an upgraded stream's too; a swap (swap.go) changes the table
//     only between requests, and a table is closed only once no request
//     uses it.
package worker
