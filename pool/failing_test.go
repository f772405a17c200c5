package pool

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// crashLoop runs a pool whose only worker exits at once, driving it as the
// engine does, until cond holds.
func crashLoop(t *testing.T, p *Pool, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(20 * time.Millisecond)
		now := time.Now()
		for _, ev := range Reap() {
			p.HandleExit(ev, now)
		}
		p.Tick(now)
	}
}

// TestPoolFailingAndStaged: a live pool with no ready worker for longer
// than boot_timeout answers 503 from the master; a staged one (a reload's)
// never does; draining the live pool ends the answers.
func TestPoolFailingAndStaged(t *testing.T) {
	s := openSocket(t)
	addr := socketAddr(t, s)
	// The worker cannot open its access log: the path is a directory.
	l := hclconfig.Listener{Name: "bad", Class: hclconfig.ClassAsync, Workers: 1, BootTimeout: 300 * time.Millisecond,
		GracefulTimeout: time.Second, AccessLog: hclconfig.AccessLog{File: t.TempDir(), Format: "combined"}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Listener: l, Gen: 1, Sockets: []*os.File{s.File}, Notify: "@hfork-test-none",
		OS: RealOS(), Output: NewOutput(io.Discard, log), Log: log}
	staged := New(Config{Listener: l, Gen: 2, Sockets: cfg.Sockets, Notify: cfg.Notify, OS: cfg.OS,
		Output: cfg.Output, Log: log, Staged: true})
	staged.Start()
	started := time.Now()
	crashLoop(t, staged, func() bool { return staged.Err() != nil && time.Since(started) > 3*l.BootTimeout })
	if staged.Failing() {
		t.Fatal("a staged pool answers for the listener")
	}
	staged.Stop(true)

	p := New(cfg)
	p.Start()
	crashLoop(t, p, p.Failing)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("failing pool: %d, want 503", resp.StatusCode)
	}
	p.Drain("test")
	if p.Failing() {
		t.Error("a drained pool still answers")
	}
	// The socket is the workers' again: a client waits in the queue.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Error("a drained pool's client was answered")
	}
	crashLoop(t, p, p.Done)
}
