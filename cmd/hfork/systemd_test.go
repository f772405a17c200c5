package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify runs the master as a Type=notify-reload service would:
// with NOTIFY_SOCKET set. It must say READY=1, RELOADING=1 with
// MONOTONIC_USEC then READY=1 on a reload, MAINPID= after an upgrade, and
// STOPPING=1 on the way out.
func TestSystemdNotify(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(what string) string {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, what) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q from the master", what)
			}
		}
	}

	bin := filepath.Join(t.TempDir(), "hfork")
	buildHfork(t, bin, "")
	t.Setenv("NOTIFY_SOCKET", sockPath)
	port := mustFreePort(t)
	m := startMaster(t, bin, webConfig(port, "one", ""))
	expect("READY=1")

	m.writeConfig(webConfig(port, "two", ""))
	m.signal(syscall.SIGHUP)
	r := expect("RELOADING=1")
	if !strings.Contains(r, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", r)
	}
	expect("READY=1")
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "two")

	old := m.pid()
	m.signal(syscall.SIGUSR2)
	main := expect("MAINPID=")
	if !waitGone(old, 15*time.Second) {
		t.Fatal("old master still running after upgrade")
	}
	if want := fmt.Sprintf("MAINPID=%d", m.pid()); !strings.Contains(main, want) {
		t.Errorf("got %q, want %s", main, want)
	}
	for drained := false; !drained; {
		select {
		case msg := <-msgs:
			if strings.Contains(msg, "STOPPING=1") {
				t.Errorf("the old master said STOPPING=1 after the handover: %q", msg)
			}
		default:
			drained = true
		}
	}
	syscall.Kill(m.pid(), syscall.SIGQUIT)
	expect("STOPPING=1")
	os.Remove(sockPath)
}
