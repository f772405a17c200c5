package evloop

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig/testcert"
)

// TestTLSOverMemory checks what the loop's TLS rests on: a tls.Conn whose
// transport runs dry returns a temporary error and goes on once more
// ciphertext comes, even in the middle of a record; and what it writes
// lands in memory, one record per Write.
func TestTLSOverMemory(t *testing.T) {
	certPath, keyPath := testcert.Write(t, t.TempDir(), "c", testcert.Options{})
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
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
