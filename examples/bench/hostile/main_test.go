package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestExchangeLists: exchange lists every answer until the close.
func TestExchangeLists(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			if r.Close {
				return
			}
		}
	}()
	got := exchange(ln.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"+closer)
	if !strings.HasPrefix(got, "200 200 ") {
		t.Fatalf("exchange = %q", got)
	}
}

func TestHexPort(t *testing.T) {
	if got := hexPort("0100007F:1F90"); got != "8080" {
		t.Fatalf("hexPort = %q", got)
	}
	if got := hexPort("bad"); got != "" {
		t.Fatalf("hexPort(bad) = %q", got)
	}
}

// TestProbeSaysWhy: a probe names what it missed on.
func TestProbeSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		answer, want string
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ""},
		{"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "status"},
		{"", "closed"},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, tc.answer)
		}()
		if got := probe(ln.Addr().String()); got != tc.want {
			t.Errorf("answer %q: probe = %q, want %q", tc.answer, got, tc.want)
		}
		ln.Close()
	}
	r := floodResult{ok: 1, total: 4, miss: map[string]int{"head": 2, "dial": 1}}
	if got := r.misses(); got != "; missed: dial 1, head 2" {
		t.Errorf("misses = %q", got)
	}
}
