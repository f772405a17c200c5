// Package evloop is the event loop that serves the async class's
// listeners, plain HTTP and HTTP/1.1 over TLS, the way nginx does: one thread per worker waits in
// epoll_wait (package poll) on the listening sockets and every connection,
// reads what is ready, answers every complete request it holds with one
// write, and goes back to waiting. Per request that is one read and one
// write, where net/http spends a goroutine wake-up and a third read that
// finds nothing.
//
// It answers GET and HEAD requests for respond, static and redirect
// routes, and forwards those for proxy routes to plain-HTTP and
// unix-socket upstreams over its own pool of keep-alive connections
// (app.FastServer; exchange.go, upstream.go), picked, marked and retried
// by package upstream as net/http's proxy does. The first request it does not answer itself, a body, an
// upgrade, a Range, a malformed line, hands the connection to net/http
// with the bytes read so far (handoff.go): net/http serves it from then
// on, exactly as it serves a connection it accepted. So the loop need not
// implement all of HTTP/1.1 to keep all of it; the bytes themselves are
// package h1's.
//
// What the loop keeps of net/http's contract, for the requests it
// answers: keep-alive (HTTP/1.1, and HTTP/1.0 with "Connection:
// keep-alive"), pipelining (answers in order, in one write), "Connection:
// close", read_header_timeout (and read_timeout, if shorter) for a head
// to arrive, keepalive for an idle connection, write_timeout between two
// writes of an answer (nginx's send_timeout; bytes the client
// acknowledges count as taken), closing without losing the answer (shutdown, then read
// until the client closes: lingerTime, longer while the answer is still
// in the send buffer, up to lingerMax), worker_connections with eviction
// of the oldest reusable connections (reuse.go), max_connections_per_ip
// (through Host.Admit), max_requests (through Host.Served), the access log, and the drain.
//
// Over TLS (tls.go), a new connection's handshake runs on the loop's
// thread as a coroutine (tlshs.go), since crypto/tls cannot pause one when
// the socket runs dry: it yields to the loop when it needs more ciphertext
// and is resumed when more arrives. It starts once the client's first
// record has come whole (gathered in c.in until then), and an idle
// coroutine is kept for the next handshake a while (tlscoro.go). Then an "h2" connection goes to
// net/http, and any other stays with the loop, which drives crypto/tls's
// record layer over memory: c.in and c.out hold plaintext, ciphertext
// passes through the conn's tlsIO.
//
// Files: loop.go runs the loop and takes commands; accept.go accepts;
// tls.go is a TLS connection's records and handoff, tlshs.go its
// handshake, tlscoro.go the handshakes' coroutines; proxyproto.go takes a
// PROXY protocol header off a new connection (a TLS one's before its
// first record);
// conn.go is a client connection's life; reuse.go the reusable queue a
// full worker evicts from; handoff.go gives one to
// net/http; upstream.go is the upstream pool; exchange.go one forwarded
// request; progress.go tells a drain which answers still move.
//
// The worker meets the loop through Config, read once by New, and Host:
// the loop takes a connection slot from the host before each accept and
// gives it back on close, tells it of each request served and each idle
// connection evicted, and hands it the connections net/http is to serve.
//
// Invariants:
//
//   - One goroutine, locked to its thread, runs the loop and owns all of
//     its state; Drain and Stop only queue a command and wake it, and do
//     nothing once Run has returned.
//   - Every connection the loop holds holds one of the host's slots; a
//     handed-over connection takes its slot with it.
//   - A TLS handshake's coroutine runs only inside the loop's resume of
//     it (no one else touches the tls.Conn meanwhile), and it is parked
//     whenever the loop runs; a connection takes one only once its first
//     record is whole; while it lasts, the connection is outside the
//     reusable queue and keeps its deadline from the accept
//     (read_header_timeout), and closing the connection ends it.
//   - A connection is in the reusable queue exactly while it waits for a
//     request (silent, idle, or with a head or a first TLS record still
//     incomplete), in the order it began to wait.
//   - Answers leave in the order their requests came; a request waits
//     behind a file or a proxied answer, never overtakes it.
//   - Once an upstream's answer has begun to reach the client, a failure
//     cuts the connection; before, it answers 502, 503 or 504, and a
//     request is sent again (on a new connection, or to another
//     upstream) only when the upstream said nothing at all.
package evloop
