package pool

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/hfork/hfork/pool/wire"
)

// TestSendKeepsOrder: control lines reach the worker in the order the
// pool sent them, even when certificate pushes fill the pipe and the
// writer waits; after closeControl nothing more is written.
func TestSendKeepsOrder(t *testing.T) {
	r, wf, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := &Pool{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := &Worker{control: wire.NewControl(wf)}
	big := make([]wire.CertPEM, 1)
	// A few lines fill a 64 KiB pipe; all 200 (1.6 MB) stay within
	// wire.MaxControlQueue, so none is dropped.
	big[0].Cert = strings.Repeat("x", 8192)
	const n = 200
	for i := range n {
		p.send(w, wire.Command{LogLevel: "info", Certificates: big, LogFormat: string(rune('a' + i%26))})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for i := range n {
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i, sc.Err())
		}
		var c wire.Command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if want := string(rune('a' + i%26)); c.LogFormat != want {
			t.Fatalf("line %d has %q, want %q: lines out of order", i, c.LogFormat, want)
		}
	}
	w.closeControl()
	p.send(w, wire.Command{LogLevel: "debug"})
	if sc.Scan() {
		t.Errorf("a line after closeControl: %q", sc.Text())
	}
}
