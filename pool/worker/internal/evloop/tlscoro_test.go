package evloop

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// handshakeAndGet makes one TLS connection to addr and one request on it.
func handshakeAndGet(t *testing.T, addr string) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if status, body, err := getOver(c, "/"); err != nil || status != 200 || body != "hi\n" {
		t.Fatalf("over TLS: %d %q %v", status, body, err)
	}
}

// An idle handshake coroutine ends once it was idle for the pool's idle
// time, and the next handshake starts a new one.
func TestHandshakeCoroutineIdleExpiry(t *testing.T) {
	tl := startLoopWith(t, 8, func(c *Config) { c.TLS = serverTLS(t) },
		func(l *Loop) { l.hsPool.idleFor = int64(20 * time.Millisecond) })
	handshakeAndGet(t, tl.addr)
	tl.log.waitLog(t, `msg="idle tls handshake coroutines ended" ended=1 kept=0`)
	if live, busy := tl.hsPool.live.Load(), tl.hsPool.busy.Load(); live != 0 || busy != 0 {
		t.Fatalf("after the idle time: %d coroutines, %d busy; want none", live, busy)
	}
	handshakeAndGet(t, tl.addr)
	tl.Stop()
	tl.wait(t)
	if live := tl.hsPool.live.Load(); live != 0 {
		t.Fatalf("%d coroutines outlived the loop", live)
	}
}
