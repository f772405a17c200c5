// Package wire is the worker protocol: everything the master and its
// workers (hfork's own and exec'd programs alike) agree on, and nothing
// either side does with it.
//
//   - The environment a worker starts with (env.go): systemd's LISTEN_FDS,
//     LISTEN_FDNAMES, LISTEN_PID and NOTIFY_SOCKET, hfork's HFORK_* names,
//     and Environ, the one scrubber that keeps a process's own protocol
//     variables away from the children it starts.
//   - The control pipe of a built-in worker (control.go): one JSON Spec
//     line, then Command lines; EOF means the master is gone. They carry
//     the TLS pairs the master read (CertPEM: a worker never opens a key
//     file) and the status page's data. Control is the master's end: it
//     never blocks its caller and keeps the order.
//   - sd_notify (notify.go, client.go): the keys (the metrics counters
//     among them, with DurationBuckets), their parser, the heartbeat a
//     built-in worker sends, and the one client, whose every write has a
//     deadline.
//   - The signal names a config may use (signals.go).
//   - What a swap in place may change (swap.go, SwapMask).
//
// Invariants:
//   - The package imports nothing of hfork but hclconfig's values (a Spec
//     carries the resolved listener), so both sides can import it.
//   - Messages on a control pipe arrive in the order they were sent, the
//     Spec first; sending never waits for the worker to read.
//   - No write to a notify socket waits longer than the deadline it was
//     given: a full queue at the receiver is an error, not a stall.
package wire
