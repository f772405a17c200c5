package evloop

import (
	"net"
	"testing"
	"time"
)

// TestProgress: a connection never sampled is stalled; one whose counter
// moved is moving for StallWindow, then stalled unless it moves again.
func TestProgress(t *testing.T) {
	var p Progress
	if !p.Stalled(0) {
		t.Fatal("never sampled: not stalled")
	}
	w := int64(StallWindow)
	p.Observe(10, 1)
	if p.Stalled(1 + w - 1) {
		t.Error("stalled within the window")
	}
	p.Observe(10, 1+w/2) // no movement: the window still counts from 1
	if !p.Stalled(1 + w) {
		t.Error("not stalled a window after it last moved")
	}
	p.Observe(11, 1+w)
	if p.Stalled(1 + w + w/2) {
		t.Error("stalled just after it moved")
	}
}

// TestMoved: the kernel's counter of a TCP connection grows with the
// bytes that cross it.
func TestMoved(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd := func() int {
		var n int
		rc, _ := s.(*net.TCPConn).SyscallConn()
		rc.Control(func(f uintptr) { n = int(f) })
		return n
	}()
	before := Moved(fd)
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := 0; got < len(buf); {
		n, err := s.Read(buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if after := Moved(fd); after-before != 1000 {
		t.Errorf("Moved grew by %d, want 1000", after-before)
	}
}
