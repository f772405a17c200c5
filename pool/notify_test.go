package pool

import (
	"net"
	"os"
	"testing"
	"time"
)

func TestNotifyListenerAttributesSender(t *testing.T) {
	got := make(chan NotifyEvent, 1)
	n, err := ListenNotify(func(ev NotifyEvent) { got <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.Addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("READY=1\nSTATUS=hello world\nX_HFORK_REQUESTS=7"))
	select {
	case ev := <-got:
		if ev.Pid != os.Getpid() {
			t.Errorf("pid = %d, want %d", ev.Pid, os.Getpid())
		}
		if ev.Notice["READY"] != "1" || ev.Notice["STATUS"] != "hello world" || ev.Notice["X_HFORK_REQUESTS"] != "7" {
			t.Errorf("fields = %v", ev.Notice)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notify event")
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Starting: "starting", Ready: "ready", Draining: "draining", Exited: "exited"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
}
