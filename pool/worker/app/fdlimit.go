package app

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"
)

// A worker out of file descriptors (EMFILE, or ENFILE for the whole
// system) cannot open the file or the upstream connection a request
// needs. That is the server's trouble, not the client's: the answer is
// 503 with Retry-After, never a cacheable 404, and service comes back by
// itself once descriptors free up. The condition is logged as an error,
// once a second with a count, as a flood of them would drown the log.

// OutOfFDs reports whether err says the process or the system ran out of
// file descriptors.
func OutOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// FDAlarm paces the log line of OutOfFDs failures; each app that opens
// descriptors for requests holds one. The zero value is ready.
type FDAlarm struct {
	count  atomic.Uint64 // failures since the last line
	logged atomic.Int64  // unix nanos of the last line
}

// Note counts a request refused for want of file descriptors, and logs
// at most once a second how many were since the last line.
func (a *FDAlarm) Note(log *slog.Logger, what string, err error) {
	a.note(log, what, err, time.Now())
}

func (a *FDAlarm) note(log *slog.Logger, what string, err error, now time.Time) {
	n := a.count.Add(1)
	last := a.logged.Load()
	if now.UnixNano()-last < int64(time.Second) || !a.logged.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	a.count.Add(-n)
	log.Error("out of file descriptors; answering 503", "what", what, "err", err, "count", n)
}
