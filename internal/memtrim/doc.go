// Package memtrim gives a Go process's free memory back to the OS once a
// burst of load has passed. The runtime keeps the heap it grew to for a
// while (its scavenger returns it slowly, and only down to about the
// last collection's goal), so a worker that held a thousand connections
// a minute ago still holds their pages. Run watches the runtime's memory
// and, when it is more than Slack above the lowest it was seen at and
// has stopped growing while allocation is quiet, calls
// debug.FreeOSMemory once: one collection and the free pages returned.
//
// Invariant: one trim per burst. After a trim the new level is the
// floor, so memory that stays in use (connections still open) does not
// make it trim again until it grows by Slack more.
package memtrim
