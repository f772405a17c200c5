// Package certset is a TLS listener's certificates in memory, shared by
// the master (which reads the files and answers a failing listener over
// TLS itself) and the built-in worker (which gets the PEM over its control
// pipe): one implementation of parsing a pair and choosing a certificate
// by SNI, importable by both without the pool importing the worker.
//
// Invariants: a Set is never empty; handshakes read an immutable snapshot
// through an atomic pointer, so an Update never makes one wait or fail; a
// pair that does not parse keeps the certificate it had.
package certset
