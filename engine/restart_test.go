package engine

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestControlRestart: "restart [LISTENER]" on a real control socket reaches
// the master's loop with the listener named, and its answer or error comes
// back through ControlRestart.
func TestControlRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hfork.pid.sock")
	var mu sync.Mutex
	var asked []string
	c, err := listenControl(path, func(msg any) {
		req := msg.(restartReq)
		mu.Lock()
		asked = append(asked, req.Listener)
		mu.Unlock()
		if req.Listener == "nope" {
			req.Reply <- restartAnswer{err: errors.New(`no listener "nope"`)}
			return
		}
		req.Reply <- restartAnswer{text: `  restart  listener "` + req.Listener + `": 2 workers`}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	out, err := ControlRestart(path, "web")
	if err != nil || out != "restarting:\n  restart  listener \"web\": 2 workers" {
		t.Errorf("restart web: %q, %v", out, err)
	}
	if _, err := ControlRestart(path, ""); err != nil {
		t.Errorf("restart all: %v", err)
	}
	if _, err := ControlRestart(path, "nope"); err == nil || err.Error() != `no listener "nope"` {
		t.Errorf("restart nope: %v", err)
	}
	mu.Lock()
	got := strings.Join(asked, ",")
	mu.Unlock()
	if got != "web,,nope" {
		t.Errorf("loop saw %q", got)
	}
	// A name that cannot be a listener never reaches the loop.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "restart ../x y\n")
	b, _ := io.ReadAll(conn)
	conn.Close()
	var r controlReply
	if err := json.Unmarshal(b, &r); err != nil || !strings.Contains(r.Error, "cannot name a listener") {
		t.Errorf("bad name: answer %q (%v)", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 3 {
		t.Errorf("bad name reached the loop: %d requests", len(asked))
	}
}
