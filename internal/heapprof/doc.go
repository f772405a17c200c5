// Package heapprof writes heap profiles of a running hfork process for
// diagnosis: where the memory of a worker or the master goes after a
// burst of load. It is off unless the operator names a directory in
// HFORK_HEAP_PROFILE; then each SIGUSR1 (and, for a worker, its exit)
// writes one profile there, after a collection, so that in-use figures
// are the live heap and not garbage waiting for the collector.
//
// Invariant: with HFORK_HEAP_PROFILE unset, nothing here runs and the
// runtime's sampling rate is left as it is.
package heapprof
