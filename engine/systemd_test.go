package engine

import (
	"net"
	"strings"
	"testing"
	"time"
)

func listenSD(t *testing.T) *net.UnixConn {
	t.Helper()
	addr := "@hfork-sd-test-" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000000")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return c
}

func TestSDNotifierSendsInOrder(t *testing.T) {
	sink := listenSD(t)
	s := newSDNotifier()
	if s.addr == "" {
		t.Fatal("NOTIFY_SOCKET not taken")
	}
	want := []string{"STATUS=starting workers", "READY=1\nSTATUS=serving", "RELOADING=1", "READY=1", "STOPPING=1"}
	for _, st := range want {
		s.send(st)
	}
	s.close()
	sink.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	for i, w := range want {
		n, err := sink.Read(buf)
		if err != nil || string(buf[:n]) != w {
			t.Fatalf("datagram %d = %q, %v; want %q", i, buf[:n], err, w)
		}
	}
	s.send("READY=1") // after close: dropped, not a panic
}

// A systemd that reads nothing must not stall the state owner: send
// returns whatever the receiver does, and close gives up in the end.
func TestSDNotifierNeverBlocks(t *testing.T) {
	sink := listenSD(t)
	sink.SetReadBuffer(1)
	s := newSDNotifier()
	for range 1000 {
		s.send("WATCHDOG=1\nSTATUS=" + strings.Repeat("x", 1000))
	}
	s.close()
}

func TestSDNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	s := newSDNotifier()
	s.send("READY=1")
	s.close()
}
