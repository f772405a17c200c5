// Package pool runs one listener's workers from the master's side: it
// spawns them, gates on their readiness (sd_notify READY=1), watches their
// heartbeats and timeouts, restarts them with backoff, scales, recycles,
// drains and replaces them.
//
// A Pool is driven by exactly one goroutine (the engine's loop): every
// method is called from it, and everything that happens elsewhere (a child
// exits, a notify datagram arrives) reaches the pool as an Event that the
// loop hands to Pool.Handle. So a pool needs no locks.
//
// Invariants:
//   - A worker is Starting, then Ready, then Draining, then Exited; it never
//     goes back. Every transition is one log line with listener, pid, gen.
//   - A staged pool (a reload's new generation) never restarts a worker that
//     failed to boot: it reports the failure, so the old generation stays.
//   - A recycled worker is drained only after its replacement is ready, so
//     capacity never dips.
//   - A pool's Counters never decrease: a worker's counters are cumulative,
//     and its last report joins the pool's total when it exits.
//   - No worker outlives the master: the spawner's thread is locked, so
//     Pdeathsig fires only when the master itself dies.
//   - A live pool whose listener has had no ready worker for longer than
//     boot_timeout answers its clients from the master (fallback) until a
//     worker is ready; it does so on duplicates of the sockets, so the
//     sockets and their queues stay the workers'.
//   - A TLS pool's certificates and keys are read by the master (Certs)
//     and reach its workers over the control pipe, in order: no worker
//     opens a key file.
//   - Every worker starts from the spawner's thread with no_new_privs and
//     (under a root master) an empty capability bounding set, and with an
//     environment built by workerEnv, never the master's whole one.
package pool
