// Package engine is the hfork master. One goroutine (Master.Run's loop)
// owns the running state: the config, the pools of every listener, the
// reload in flight and the upgrade in flight. Signals, reaped children,
// notify datagrams and reload requests reach it as messages. Signals come
// from Options.Signals when set, and every process effect from Options.OS
// (pool.OS), so tests drive the loop's decisions without processes.
//
// Plan(old, new, opts) is a pure function deciding what a reload does
// (opts says whether an operator asked, which restarts app and exec
// code); the loop only executes plans.
//
// Invariants:
//   - A config is applied whole or not at all: a reload whose config is
//     invalid, whose binds cannot be opened or whose new workers fail to
//     boot leaves the previous generation serving.
//   - New workers are ready before old ones drain, and a listener never
//     has more than max_draining_generations generations draining: a
//     commit that would exceed it waits until the oldest, hurried, is gone.
//   - The live config and the one before it are kept with their sources
//     (rollback.go); a rollback applies the kept one like a reload, and
//     never reads the file.
//   - A socket is closed only when no generation uses it.
//   - The master reaps every child and exits only once every worker has.
//   - Whoever asks the loop (the control socket, the metrics server, the
//     status page) gets an answer on its own channel: a reload's asker
//     gets that reload's plan, never another's. Nothing outside the loop
//     reads the loop's state; it gets a copy (a view).
//   - Metrics are served by the master, never by a worker, and their
//     counters never go backwards: the totals of retired generations are
//     kept.
//   - A reload with swaps (swap.go) commits only once every worker of each
//     swapped listener confirmed; otherwise every swap of it is rolled
//     back with the rest of the reload.
package engine
