package pool

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/hfork/hfork/pool/worker"
)

// TestSendKeepsOrder: control lines reach the worker in the order they
// were sent, even when the pipe fills and the writer waits; after
// closeControl nothing more is written.
func TestSendKeepsOrder(t *testing.T) {
	r, wf, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := &Worker{control: wf}
	big := make([]worker.CertPEM, 1)
	big[0].Cert = string(make([]byte, 8192)) // a few lines fill a 64 KiB pipe
	const n = 200
	for i := range n {
		w.send(worker.Command{LogLevel: "info", Certificates: big, LogFormat: string(rune('a' + i%26))})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for i := range n {
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i, sc.Err())
		}
		var c worker.Command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if want := string(rune('a' + i%26)); c.LogFormat != want {
			t.Fatalf("line %d has %q, want %q: lines out of order", i, c.LogFormat, want)
		}
	}
	w.closeControl()
	w.send(worker.Command{LogLevel: "debug"})
	if sc.Scan() {
		t.Errorf("a line after closeControl: %q", sc.Text())
	}
}
