package engine

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestControlRestart: "restart [LISTENER]" on a real control socket reaches
// the restart hook with the listener named, and its answer or error comes
// back through ControlRestart.
func TestControlRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hfork.pid.sock")
	c, err := listenControl(path, func(reply chan<- error) { reply <- nil }, func() string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if _, err := ControlRestart(path, "web"); err == nil || !strings.Contains(err.Error(), "does not restart") {
		t.Errorf("before a hook is set: %v", err)
	}
	var mu sync.Mutex
	var asked []string
	hook := func(l string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, l)
		if l == "nope" {
			return "", errors.New(`no listener "nope"`)
		}
		return `  restart  listener "` + l + `": 2 workers`, nil
	}
	c.restart.Store(&hook)
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
	defer mu.Unlock()
	if strings.Join(asked, ",") != "web,,nope" {
		t.Errorf("hook saw %q", asked)
	}
	// A name that cannot be a listener never reaches the hook.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "restart ../x y\n")
	b, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.HasPrefix(string(b), "error\n") || len(asked) != 3 {
		t.Errorf("bad name: answer %q, hook calls %d", b, len(asked))
	}
}
