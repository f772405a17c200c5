// Package h2 is hfork's HTTP/2 server connection as a state machine
// without I/O (RFC 9113): Feed gives it the bytes read from the client,
// it answers with events (a request's head, its body's DATA, a reset, a
// window that opened) and with the bytes to write, which TakeOutput
// hands over. It starts no goroutine and touches no socket, so the
// driver decides how reads, handlers and writes meet, and tests drive it
// with raw frames.
//
// Invariants: every frame the peer sends is checked against the whole
// contract (the preface, SETTINGS and its ACK, flow control on the
// connection and on each stream, CONTINUATION, stream states, header
// validation) and a violation ends in RST_STREAM or GOAWAY with the code
// the RFC names; nothing is ever sent beyond a window the peer granted;
// a stream counts against max concurrent streams until the driver
// Releases it, even after a reset, so a client that opens and resets
// streams (CVE-2023-44487) cannot run more handlers at once than the
// limit, and one that resets too many gets GOAWAY ENHANCE_YOUR_CALM; a
// header block is bounded in bytes and frames (CVE-2024-27316). The
// Conn keeps no clock: it says whether its SETTINGS still await their
// ACK (AwaitingSettingsAck), and the driver ends a connection that
// leaves them so too long with GoAway(ErrSettingsTimeout).
//
// A Conn holds an output buffer only while it has bytes to write: the
// buffers go round a pool between TakeOutput, the driver's write and
// PutOutput, and Trim lets go of what a quiet connection still holds.
//
// A Conn is not safe for concurrent use: the driver holds a lock around
// every call.
package h2
