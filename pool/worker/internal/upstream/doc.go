// Package upstream is a proxy route's upstreams as one worker sees them:
// the members (one per address: a unix socket, an IP, or each address a
// hostname resolves to), the policy that picks one for a request, and
// their health, passive (max_fails within fail_timeout) and active
// (health_check probes). Both of the worker's proxies use it, the event
// loop's and net/http's, so they pick, count and mark alike.
//
// Health is the worker's own: each worker probes and marks its upstreams
// by itself, as each nginx worker does without a shared zone. Every change
// of health is logged once, with the upstream.
//
// Invariants:
//
//   - Pick, Begin, End and Failed are safe from any goroutine and never
//     block on I/O: the event loop calls them. Probes and resolution run
//     on the group's own goroutines, started by Start and ended by Close.
//   - A member's ID is unique in the process and never reused, so a
//     connection pool keyed by ID never mixes two addresses.
//   - Pick returns only a healthy member, or nil: a request is never
//     sent to an upstream known to be down.
package upstream
