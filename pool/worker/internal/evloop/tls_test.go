package evloop

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestTLSOverMemory checks what the loop's TLS rests on: a tls.Conn whose
// transport runs dry returns a temporary error and goes on once more
// ciphertext comes, even in the middle of a record; and what it writes
// lands in memory, one record per Write.
func TestTLSOverMemory(t *testing.T) {
	cert := serverTLS(t).Certificates[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type dialed struct {
		c   *tls.Conn
		err error
	}
	client := make(chan dialed, 1)
	go func() {
		// TLS 1.2 with AES-GCM: no ticket after the handshake, and a
		// record's overhead is known (header 5, explicit nonce 8, tag 16).
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
		client <- dialed{c, err}
	}()
	sock, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sock.SetDeadline(time.Now().Add(10 * time.Second))
	var tio tlsIO
	tio.sock = sock
	server := tls.Server(&tio, &tls.Config{Certificates: []tls.Certificate{cert}, DynamicRecordSizingDisabled: true})
	if err := server.Handshake(); err != nil {
		t.Fatal(err)
	}
	d := <-client
	if d.err != nil {
		t.Fatal(d.err)
	}
	defer d.c.Close()
	tio.sock = nil // from here on, memory

	if _, err := d.c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	record := make([]byte, 5+8+5+16)
	if _, err := io.ReadFull(sock, record); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	tio.in = record[:7] // part of a record
	if _, err := server.Read(buf); !errors.Is(err, errDry) {
		t.Fatalf("read of part of a record: %v, want errDry", err)
	}
	tio.in = record[7:]
	n, err := server.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read after the rest came: %q, %v", buf[:n], err)
	}
	if _, err := server.Read(buf); !errors.Is(err, errDry) {
		t.Fatalf("read with nothing more: %v, want errDry", err)
	}

	answer := make([]byte, 20000)
	for i := range answer {
		answer[i] = byte(i)
	}
	if _, err := server.Write(answer); err != nil {
		t.Fatal(err)
	}
	// Two records: 16 KiB, then the rest; no small first ones.
	if want := 2 * (5 + 8 + 16); len(tio.out) != len(answer)+want {
		t.Fatalf("sealed %d bytes for %d, want %d of overhead", len(tio.out), len(answer), want)
	}
	if _, err := sock.Write(tio.out); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(answer))
	d.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(d.c, got); err != nil || string(got) != string(answer) {
		t.Fatalf("the client read %v", err)
	}
}

// TestTLSRecordsBufferReturns: the records an answer is sealed into wait
// in a pooled buffer only until the socket took them, so connections
// between answers hold none, and the next answer, on another connection,
// is sealed into the same buffer.
func TestTLSRecordsBufferReturns(t *testing.T) {
	// The answer's plaintext fits a 32 KiB buffer, its records do not:
	// the records' buffer is the pool's one 64 KiB buffer.
	body := []byte(strings.Repeat("x", 32000))
	l := startLoop(t, 8, func(c *Config) { c.Fast, c.TLS = bigFast{body}, serverTLS(t) })

	// Three connections in turn, all kept open: a buffer not given back
	// stays with its connection until the loop stops.
	for i := range 3 {
		c, err := tls.Dial("tcp", l.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		getWhole(t, c, i, len(body))
	}
	l.Stop()
	l.wait(t)
	if n := len(l.outs.free[outClass(64<<10)]); n != 1 {
		t.Fatalf("the pool holds %d buffers of 64 KiB after three answers in turn, want the one their records shared", n)
	}
}
