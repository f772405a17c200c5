package worker

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// benchLoop measures one request after another on one keep-alive
// connection through a worker's event loop, or through net/http alone:
// per request, the loop's whole path with its syscalls, and the
// client's.
func benchLoop(b *testing.B, eventLoop bool, path string) { benchSite(b, eventLoop, false, path) }

// benchSite is benchLoop, over TLS (HTTP/1.1) when overTLS is set.
func benchSite(b *testing.B, eventLoop, overTLS bool, path string) {
	l := loopSite(b)
	l.EventLoop = eventLoop
	l.Keepalive = time.Minute
	var tw *testWorker
	var c net.Conn
	var err error
	if overTLS {
		tw, _ = tlsSiteOf(b, l, nil)
		c, err = tls.Dial("tcp", tw.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		tw = startSite(b, l, nil, nil)
		c, err = net.Dial("tcp", tw.addr)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		// The answers have a Content-Length; read the head, then it.
		n := -1
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				n = atoi(strings.TrimSpace(v))
			}
		}
		if n < 0 {
			b.Fatal("no Content-Length")
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			b.Fatal(err)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func BenchmarkLoopRespond(b *testing.B)    { benchLoop(b, true, "/") }
func BenchmarkNetHTTPRespond(b *testing.B) { benchLoop(b, false, "/") }
func BenchmarkLoopStatic(b *testing.B)     { benchLoop(b, true, "/static/a.txt") }
func BenchmarkNetHTTPStatic(b *testing.B)  { benchLoop(b, false, "/static/a.txt") }
func BenchmarkLoopProxy(b *testing.B)      { benchLoop(b, true, "/proxy/a") }
func BenchmarkNetHTTPProxy(b *testing.B)   { benchLoop(b, false, "/proxy/a") }

func BenchmarkLoopTLSRespond(b *testing.B)    { benchSite(b, true, true, "/") }
func BenchmarkNetHTTPTLSRespond(b *testing.B) { benchSite(b, false, true, "/") }
func BenchmarkLoopTLSStatic(b *testing.B)     { benchSite(b, true, true, "/static/text.txt") }
func BenchmarkNetHTTPTLSStatic(b *testing.B)  { benchSite(b, false, true, "/static/text.txt") }
