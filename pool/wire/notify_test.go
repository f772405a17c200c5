package wire

import (
	"testing"
	"time"
)

func TestParseNotice(t *testing.T) {
	n := ParseNotice([]byte("READY=1\nSTATUS=hello = world\n=nokey\nnoequals\nSTOPPING=0\nREADY=1"))
	if !n.Flag(KeyReady) || n.Flag(KeyStopping) || n.Flag(KeyWatchdog) {
		t.Errorf("flags of %v", n)
	}
	if s, ok := n.Status(); !ok || s != "hello = world" {
		t.Errorf("status %q, %v", s, ok)
	}
	if len(n) != 3 {
		t.Errorf("fields %v, want READY, STATUS, STOPPING", n)
	}
	if _, ok := n.Load(); ok {
		t.Error("a datagram without counters has a load")
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	l := Load{Requests: 42, Inflight: 2, Oldest: 1500 * time.Millisecond, OldestReq: "POST /upload"}
	text := Heartbeat(l)
	want := "READY=1\nWATCHDOG=1\nX_HFORK_REQUESTS=42\nX_HFORK_INFLIGHT=2\nX_HFORK_OLDEST_MS=1500\nX_HFORK_OLDEST_REQ=POST /upload"
	if text != want {
		t.Errorf("heartbeat =\n%s\nwant\n%s", text, want)
	}
	n := ParseNotice([]byte(text))
	got, ok := n.Load()
	if !ok || got != l {
		t.Errorf("load %+v, %v; want %+v", got, ok, l)
	}
	if !n.Flag(KeyReady) || !n.Flag(KeyWatchdog) {
		t.Errorf("heartbeat flags %v", n)
	}
}

func TestLoadMalformedNumbers(t *testing.T) {
	got, ok := ParseNotice([]byte("X_HFORK_REQUESTS=many\nX_HFORK_INFLIGHT=-\nX_HFORK_OLDEST_MS=7")).Load()
	if !ok || got.Requests != 0 || got.Inflight != 0 || got.Oldest != 7*time.Millisecond {
		t.Errorf("load %+v, %v", got, ok)
	}
}
