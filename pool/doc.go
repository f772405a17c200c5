// Package pool runs one listener's workers from the master's side: it
// spawns them, gates on their readiness (sd_notify READY=1), watches their
// heartbeats and timeouts, restarts them with backoff, scales, recycles,
// drains and replaces them.
//
// A Pool is driven by exactly one goroutine (the engine's loop): every
// method is called from it, and everything that happens elsewhere (a child
// exits, a notify datagram arrives) reaches the pool as an ExitEvent or a
// NotifyEvent that the loop hands to HandleExit or HandleNotify. So a pool
// needs no locks.
//
// Every effect on processes (start, signal, release, reap) and the clock
// goes through an OS, a struct of functions wired to the real ones in
// os_real.go; tests pass their own and drive a pool's whole lifecycle in
// milliseconds without a process. What master and worker say to each
// other is package wire's.
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
//   - The state owner never waits on a worker: control lines are queued
//     (in order, the Spec first; at most wire.MaxControlQueue bytes for a
//     worker that does not read), and an exit report that waits for the
//     worker's last output line finishes in a later Tick.
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
//   - A swap (swap.go) ends kept or rolled back: until the engine ends it,
//     the pool's Spec is the new config, so a worker started meanwhile
//     boots with it; a rollback sends the old config to every worker that
//     may run the new one, and a worker that refuses to go back is replaced.
package pool
