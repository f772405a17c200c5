package worker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
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

func TestHeartbeatText(t *testing.T) {
	got := heartbeat(load{Served: 42, Inflight: 2, Oldest: 1500 * time.Millisecond, OldestReq: "POST /upload"})
	want := "READY=1\nWATCHDOG=1\nX_HFORK_REQUESTS=42\nX_HFORK_INFLIGHT=2\nX_HFORK_OLDEST_MS=1500\nX_HFORK_OLDEST_REQ=POST /upload"
	if got != want {
		t.Errorf("heartbeat =\n%s\nwant\n%s", got, want)
	}
}

func TestNotifySocketPathAndAbstract(t *testing.T) {
	dir, err := os.MkdirTemp("", "hf") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, addr := range []string{filepath.Join(dir, "notify"), "@hfork-notify-test-" + filepath.Base(dir)} {
		sink, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		n, err := DialNotify(addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify("READY=1"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		sink.SetReadDeadline(time.Now().Add(waitLimit))
		k, err := sink.Read(buf)
		if err != nil || string(buf[:k]) != "READY=1" {
			t.Errorf("%s: got %q, %v", addr, buf[:k], err)
		}
		n.Close()
		sink.Close()
	}
}

func TestDialNotifyErrors(t *testing.T) {
	if _, err := DialNotify(""); err == nil {
		t.Error("empty address accepted")
	}
	if _, err := DialNotify("@hfork-nobody-listens-here"); err == nil || !strings.Contains(err.Error(), "dial notify socket") {
		t.Errorf("DialNotify to nothing = %v", err)
	}
}
