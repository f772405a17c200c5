package worker

import (
	"testing"
	"time"
)

func TestHeartbeatInterval(t *testing.T) {
	for timeout, want := range map[time.Duration]time.Duration{
		0:                      time.Second,
		30 * time.Second:       time.Second,
		4 * time.Second:        time.Second,
		2 * time.Second:        500 * time.Millisecond,
		400 * time.Millisecond: 100 * time.Millisecond,
		50 * time.Millisecond:  100 * time.Millisecond,
	} {
		if got := heartbeatInterval(timeout); got != want {
			t.Errorf("heartbeatInterval(%v) = %v, want %v", timeout, got, want)
		}
	}
}

// The worker's counters reach the datagram under the protocol's keys.
func TestHeartbeatText(t *testing.T) {
	got := heartbeat(load{Served: 42, Inflight: 2, Oldest: 1500 * time.Millisecond, OldestReq: "POST /upload"})
	want := "READY=1\nWATCHDOG=1\nX_HFORK_REQUESTS=42\nX_HFORK_INFLIGHT=2\nX_HFORK_OLDEST_MS=1500\nX_HFORK_OLDEST_REQ=POST /upload"
	if got != want {
		t.Errorf("heartbeat =\n%s\nwant\n%s", got, want)
	}
}
