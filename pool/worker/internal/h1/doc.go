// Package h1 is the event loop's HTTP/1 codec: pure functions over byte
// slices, no I/O and no state beyond what a caller holds. It parses a
// client's request head (Parse), an upstream's answer head (ParseAnswer),
// follows a chunked body without decoding it (ChunkScanner), and builds
// heads: the client's answers (AppendHead, EndHead), the request an
// upstream gets (AppendUpstreamRequest) and the client's copy of an
// upstream's answer (AppendAnswerHead).
//
// Invariants:
//
//   - Parse accepts a strict subset of HTTP/1.x and never decides what is
//     an error: anything it does not understand is NotFast, and net/http
//     reads the connection from there.
//   - What Parse returns points into the parsed bytes; nothing is copied.
//   - Every response head ends through EndHead, so the Date, framing and
//     Connection rules are written once.
package h1
