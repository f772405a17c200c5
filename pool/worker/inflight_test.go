package worker

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/pool/wire"
)

// An answer the event loop is still writing (a file to a client that reads
// slowly) counts in the heartbeat's in-flight requests, though net/http
// has none; once the client has it all, it counts no more.
func TestLoopAnswerInFlightInHeartbeat(t *testing.T) {
	l := loopSite(t)
	l.Timeout = 400 * time.Millisecond // heartbeat every 100ms
	tw := startSite(t, l, nil, nil)
	c := dialSlowReader(t, tw.addr)
	io.WriteString(c, "GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	tw.sink.waitFor(t, "the loop's file answer in flight", func(m map[string]string) bool {
		return m[wire.KeyInflight] == "1"
	})
	c.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 64<<10)
	var n int
	for n < 3<<20 {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
	}
	tw.sink.waitFor(t, "no answer in flight once the file is out", func(m map[string]string) bool {
		return m[wire.KeyInflight] == "0" && strings.Contains(m[wire.KeyConns], ",")
	})
}
