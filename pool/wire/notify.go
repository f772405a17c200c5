package wire

import (
	"strconv"
	"strings"
	"time"
)

// sd_notify keys a worker sends (sd_notify(3)), and hfork's own. Every
// datagram is KEY=VALUE lines; a flag is set when its value is "1".
const (
	KeyReady    = "READY"
	KeyStopping = "STOPPING"
	KeyWatchdog = "WATCHDOG"
	KeyStatus   = "STATUS"

	// KeyRequests carries the number of requests served so far.
	KeyRequests = "X_HFORK_REQUESTS"
	// KeyInflight carries the number of requests in flight.
	KeyInflight = "X_HFORK_INFLIGHT"
	// KeyOldestMS carries the age in milliseconds of the oldest in-flight
	// request (0 when none). Upgraded connections are not requests.
	KeyOldestMS = "X_HFORK_OLDEST_MS"
	// KeyOldestReq carries "METHOD PATH" of the oldest in-flight request.
	KeyOldestReq = "X_HFORK_OLDEST_REQ"
	// KeyRecycle=1 says the worker reached max_requests: the master starts
	// a replacement, waits for it to be ready, then drains this worker.
	KeyRecycle = "X_HFORK_RECYCLE"

	// The metrics counters, all cumulative since the worker started:
	//
	// KeyCodes carries answered requests by route and status class:
	// five counts (1xx to 5xx) per route in the listener's route order,
	// then five for requests no route matched, then the same for each
	// host block in file order (its routes, then its no route), all
	// joined by ",".
	KeyCodes = "X_HFORK_CODES"
	// KeyDuration carries request durations: one count per bucket of
	// DurationBuckets (not cumulative), one for longer ones, then the sum
	// of all durations in microseconds, joined by ",".
	KeyDuration = "X_HFORK_DURATION"
	// KeyBytes carries response body bytes sent.
	KeyBytes = "X_HFORK_BYTES"
	// KeyConns carries "open,idle,upgraded" connections now.
	KeyConns = "X_HFORK_CONNS"
	// KeyNamed names up to eight connections a drain would wait for,
	// separated by tabs: "request AGE_MS METHOD PATH" for the oldest
	// requests in flight, "upgraded AGE_MS METHOD PATH" for upgraded ones.
	KeyNamed = "X_HFORK_NAMED"
	// KeyDrained is sent once, when a drain ends:
	// "handed_over,requests_finished,idle_closed,cut,outlasted,cut_at_shutdown,bounded"
	// (outlasted: let run past graceful_timeout while moving, and done;
	// bounded: closed early, over max_draining_generations).
	KeyDrained = "X_HFORK_DRAINED"
	// KeySwap answers a Command's Swap: "ID" once the worker switched to
	// the new table, "ID,REASON" when it refused (the table did not build).
	KeySwap = "X_HFORK_SWAP"
)

// SwapReply is a worker's answer to a swap.
type SwapReply struct {
	ID uint64
	// Refused is why the worker kept its table; "" when it switched.
	Refused string
}

// SwapNotice is the datagram that answers swap id: refused is nil when
// the worker switched.
func SwapNotice(id uint64, refused error) string {
	s := KeySwap + "=" + strconv.FormatUint(id, 10)
	if refused != nil {
		// One line: the datagram's fields are lines.
		s += "," + strings.ReplaceAll(refused.Error(), "\n", " ")
	}
	return s
}

// Swap is the datagram's swap answer, if it carries one.
func (n Notice) Swap() (SwapReply, bool) {
	v, ok := n[KeySwap]
	if !ok {
		return SwapReply{}, false
	}
	idText, why, refused := strings.Cut(v, ",")
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return SwapReply{}, false
	}
	r := SwapReply{ID: id}
	if refused {
		r.Refused = why
		if why == "" {
			r.Refused = "refused"
		}
	}
	return r, true
}

// DurationBuckets are the upper bounds of the request duration histogram,
// shared by workers and the master's metrics.
var DurationBuckets = []time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Notice is one notify datagram, split into its fields.
type Notice map[string]string

// ParseNotice splits a datagram into its KEY=VALUE lines; a line without
// '=' or with an empty key is ignored, a later key wins.
func ParseNotice(b []byte) Notice {
	out := Notice{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// Flag reports whether key is set to "1".
func (n Notice) Flag(key string) bool { return n[key] == "1" }

// Status is the STATUS= text, if the datagram has one.
func (n Notice) Status() (string, bool) {
	s, ok := n[KeyStatus]
	return s, ok
}

// Load is what a built-in worker's heartbeat says about its requests.
type Load struct {
	Requests  uint64
	Inflight  int
	Oldest    time.Duration // age of the oldest in-flight request, in ms steps
	OldestReq string        // "METHOD PATH" of that request
}

// Load is the datagram's counters; false when it carries none (exec'd
// programs, a READY=1 alone). A malformed number reads as 0.
func (n Notice) Load() (Load, bool) {
	v, ok := n[KeyRequests]
	if !ok {
		return Load{}, false
	}
	var l Load
	l.Requests, _ = strconv.ParseUint(v, 10, 64)
	l.Inflight, _ = strconv.Atoi(n[KeyInflight])
	ms, _ := strconv.ParseInt(n[KeyOldestMS], 10, 64)
	l.Oldest = time.Duration(ms) * time.Millisecond
	l.OldestReq = n[KeyOldestReq]
	return l, true
}

// Heartbeat is the datagram a built-in worker sends every beat: WATCHDOG=1
// and its counters. READY=1 rides along so a READY datagram lost to a full
// queue is made good by the next beat; the master ignores it once it has
// one.
func Heartbeat(l Load) string {
	var b strings.Builder
	b.Grow(96 + len(l.OldestReq))
	b.WriteString(KeyReady + "=1\n" + KeyWatchdog + "=1\n")
	b.WriteString(KeyRequests + "=" + strconv.FormatUint(l.Requests, 10) + "\n")
	b.WriteString(KeyInflight + "=" + strconv.Itoa(l.Inflight) + "\n")
	b.WriteString(KeyOldestMS + "=" + strconv.FormatInt(l.Oldest.Milliseconds(), 10) + "\n")
	b.WriteString(KeyOldestReq + "=" + l.OldestReq)
	return b.String()
}
