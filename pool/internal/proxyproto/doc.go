// Package proxyproto reads the PROXY protocol header (HAProxy's, versions
// 1 and 2) that a load balancer sends before a connection's first byte,
// to tell the server the client's address. Parse is a pure function over
// bytes, for the event loop; Conn reads the header for net/http: the
// built-in worker's, and the master's when it answers a failing listener
// itself (so it sits beside certset, importable by both).
//
// Invariants:
//
//   - A listener with proxy_protocol refuses a connection that does not
//     begin with a valid header: a client that reaches it directly cannot
//     choose its own address.
//   - No byte after the header is lost: what came with it is read first.
//   - LOCAL (v2) and UNKNOWN (v1) headers are valid and keep the peer's
//     own address, as health checks from the balancer send them.
package proxyproto
