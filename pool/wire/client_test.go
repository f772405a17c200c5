package wire

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotifyClientPathAndAbstract(t *testing.T) {
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
		n, err := DialNotify(addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify("READY=1"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		sink.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := sink.Read(buf)
		if err != nil || string(buf[:k]) != "READY=1" {
			t.Errorf("%s: got %q, %v", addr, buf[:k], err)
		}
		n.Close()
		sink.Close()
	}
}

func TestDialNotifyErrors(t *testing.T) {
	if _, err := DialNotify("", time.Second); err == nil {
		t.Error("empty address accepted")
	}
	if _, err := DialNotify("@hfork-nobody-listens-here", time.Second); err == nil || !strings.Contains(err.Error(), "dial notify socket") {
		t.Errorf("DialNotify to nothing = %v", err)
	}
}

// A receiver that never reads fills its queue; the next write must give up
// at its deadline instead of waiting for room.
func TestNotifyGivesUpOnAFullReceiver(t *testing.T) {
	addr := "@hfork-notify-full-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000000")
	sink, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.SetReadBuffer(4096)
	n, err := DialNotify(addr, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	msg := strings.Repeat("x", 1024)
	for i := range 100000 {
		if err = n.Notify(msg); err != nil {
			t.Logf("write %d failed: %v", i, err)
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writes to a receiver that never reads ended with %v, want a deadline error", err)
	}
}
