package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hfork/hfork/internal/syncbuf"
)

// TestSocketActivation starts the master as systemd would with a socket
// unit: the listening socket arrives as fd 3 with LISTEN_FDS=1 and
// LISTEN_PID equal to the master's pid (set by hfork's exec shim, as
// systemd does). The test keeps its own copy of the socket open, so the
// master could not bind the port itself: serving proves it adopted fd 3.
func TestSocketActivation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	cfg := filepath.Join(dir, "server.hcl")
	os.WriteFile(cfg, []byte(webConfig(port, "activated", "")), 0o644)
	argv, _ := json.Marshal([]string{os.Args[0], "-f", cfg})
	cmd := exec.Command(os.Args[0])
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HFORK_EXEC=1", "HFORK_EXEC_ARGV="+string(argv), envTestMaster+"=1", "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	log := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("master log:\n%s", log.String())
		}
	}()
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "activated")
}
