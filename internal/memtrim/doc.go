// Package memtrim gives a Go process's free memory back to the OS once a
// burst of load has passed. The runtime keeps the heap it grew to for a
// while (its scavenger returns it slowly, and only down to about the
// last collection's goal), so a worker that held a thousand connections
// a minute ago still holds their pages. Run watches the runtime's memory
// and calls debug.FreeOSMemory once (one collection and the free pages
// returned) when it is more than Slack above the lowest it was seen at
// and has stopped growing over a quiet Interval, or, given the process's
// count of open connections, when a crowd of them has closed: then what
// they held is garbage at once, and the trim comes within a Busy look of
// their end instead of a second or two later.
//
// Invariant: one trim per burst. After a trim the new level is the
// floor, and the connections left are the new mark, so memory that stays
// in use (connections still open) does not make it trim again until it
// grows by Slack more, or a new crowd comes and goes.
package memtrim
