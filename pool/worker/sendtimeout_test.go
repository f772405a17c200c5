package worker

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// writeTimeoutSites are the ways a static file is served: the event
// loop, and net/http in the async and sync classes.
var writeTimeoutSites = []struct {
	class string
	loop  bool
}{
	{hclconfig.ClassAsync, true},
	{hclconfig.ClassAsync, false},
	{hclconfig.ClassSync, false},
}

// TestWriteTimeoutIsBetweenWrites: a client that reads a 3 MiB file at a
// steady 128 KiB every 50ms through a small receive window takes about
// 1.2s, four times write_timeout, and gets all of it: write_timeout is
// the wait between two writes (nginx's send_timeout), not a cap on the
// answer. Before, it was net/http's deadline from the end of the head,
// and the loop's too, and the download was cut.
func TestWriteTimeoutIsBetweenWrites(t *testing.T) {
	for _, s := range writeTimeoutSites {
		t.Run(fmt.Sprintf("%s/event_loop=%v", s.class, s.loop), func(t *testing.T) {
			l := loopSite(t)
			l.Class, l.EventLoop = s.class, s.loop
			l.WriteTimeout = 300 * time.Millisecond
			tw := startSite(t, l, nil, nil)
			c := dialSlowReader(t, tw.addr)
			c.SetDeadline(time.Now().Add(waitLimit))
			io.WriteString(c, "GET /static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			var got int64
			for {
				n, err := io.CopyN(io.Discard, c, 128<<10)
				got += n
				if err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond) // the client's pace, not a wait for the server
			}
			if want := int64(3 << 20); got < want {
				t.Fatalf("a steady reader got %d bytes, less than the file's %d", got, want)
			}
		})
	}
}

// TestWriteTimeoutCutsStalledReader: a client that takes nothing of a
// large answer is cut off write_timeout after the last write that moved
// bytes, on net/http as on the loop (TestLoopWriteTimeout).
func TestWriteTimeoutCutsStalledReader(t *testing.T) {
	for _, s := range writeTimeoutSites[1:] {
		t.Run(s.class, func(t *testing.T) {
			l := loopSite(t)
			l.Class, l.EventLoop = s.class, s.loop
			l.WriteTimeout = 300 * time.Millisecond
			tw := startSite(t, l, nil, nil)
			c := dialSlowReader(t, tw.addr)
			io.WriteString(c, "GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
			logs, _ := siteLogs.Load(tw.addr)
			waitUntil(t, "the cut at write_timeout", func() bool {
				return strings.Contains(logs.(*logBuffer).String(), "client took nothing of its answer for write_timeout")
			})
			c.SetReadDeadline(time.Now().Add(waitLimit))
			if n, _ := io.Copy(io.Discard, c); n >= 3<<20 {
				t.Fatalf("all %d bytes arrived; the connection should have been cut", n)
			}
		})
	}
}
