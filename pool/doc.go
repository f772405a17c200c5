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
// An app listener's workers are Python processes (app.go): the listener's
// interpreter runs hfork's runner (package pyrunner) from a pipe, with the
// same sockets, control pipe and Spec as a built-in worker, so the pool
// treats them alike; the async Python classes' timeout is liveness.
// Restart (restart.go) replaces a pool's workers one at a time through the
// recycle path.
//
// Invariants:
//   - A worker is Starting, then Ready, then Draining, then Exited; it never
//     goes back. Every transition is one log line with listener, pid, gen.
//   - A staged pool (a reload's new generation) never restarts a worker that
//     failed to boot: it reports the failure, so the old generation stays.
//   - A recycled worker is drained only after its replacement is ready, so
//     capacity never dips.
//   - No worker outlives the master: the spawner's thread is locked, so
//     Pdeathsig fires only when the master itself dies.
package pool
