package worker

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// classTLSSite serves loopSite's routes over TLS under class, from the
// event loop when loop (the loop runs the handshake), else from
// net/http (the worker runs it, tlsframe.go).
func classTLSSite(t *testing.T, class string, loop bool, edit ...func(*hclconfig.Listener)) *testWorker {
	t.Helper()
	l := loopSite(t)
	l.Class, l.EventLoop = class, loop
	for _, e := range edit {
		e(&l)
	}
	tw, _ := tlsSiteOf(t, l, nil)
	return tw
}

// replayTLS is replay over TLS, as an HTTP/1.1 client (ALPN http/1.1).
func replayTLS(t *testing.T, addr, in string) []answer {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return replayOn(t, c, in, nil)
}

// TestFramingTableTLS sends every row of framingTable over TLS to every
// class and to the event loop. net/http saw the heads unchecked before
// (it reads them above the connection the framer wraps): CL with TE,
// folded and duplicate framing headers and underscores all passed.
func TestFramingTableTLS(t *testing.T) {
	var fails atomic.Int32
	for _, s := range framingSites {
		t.Run(s.name, func(t *testing.T) {
			tw := classTLSSite(t, s.class, s.loop)
			for _, tc := range framingTable {
				in := tc.in
				if !tc.alone {
					in += closer
				}
				want := tc.want
				if s.class == hclconfig.ClassSync {
					want = want[:1]
				}
				var got []string
				for _, a := range replayTLS(t, tw.addr, in) {
					got = append(got, a.Status[:min(3, len(a.Status))])
					if tc.lacks != "" && strings.Contains(a.Body, tc.lacks) {
						t.Errorf("%s: an answer holds %q:\n%s", tc.name, tc.lacks, a.Body)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					fails.Add(1)
					t.Errorf("%s: %q\n answers %q\n want    %q", tc.name, tc.in, got, want)
				}
			}
		})
	}
	t.Logf("%d rows on %d TLS sites, %d answers differ from the table", len(framingTable), len(framingSites), fails.Load())
}

// TestTLSFramedKeepsTLSState: a request net/http serves as plain HTTP
// through the framer still carries its TLS state, which a proxy route
// tells its upstream as X-Forwarded-Proto.
func TestTLSFramedKeepsTLSState(t *testing.T) {
	tw := classTLSSite(t, hclconfig.ClassAsync, false)
	as := replayTLS(t, tw.addr, "GET /proxy/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if len(as) != 1 || !strings.Contains(as[0].Body, `X-Forwarded-Proto=["https"]`) {
		t.Fatalf("a proxied request over TLS: %v, want X-Forwarded-Proto https upstream", as)
	}
}

// TestTLSSlowHandshakeDoesNotBlockAccept: clients that open a TLS
// connection and send nothing hold a goroutine each, not the accept: a
// whole request is answered behind them.
func TestTLSSlowHandshakeDoesNotBlockAccept(t *testing.T) {
	tw := classTLSSite(t, hclconfig.ClassThread, false)
	for range 5 {
		c, err := net.Dial("tcp", tw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	as := replayTLS(t, tw.addr, "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if len(as) != 1 || as[0].Status != "200 OK" {
		t.Fatalf("a request behind silent TLS clients: %v", as)
	}
}

// TestFramingHeadLimitTLS: over TLS too, a head 100 bytes over
// max_header_bytes is a 431 and a clean close (close_notify, then EOF),
// where net/http alone served it (it allows 4 KiB over).
func TestFramingHeadLimitTLS(t *testing.T) {
	for _, s := range framingSites {
		t.Run(s.name, func(t *testing.T) {
			tw := classTLSSite(t, s.class, s.loop, func(l *hclconfig.Listener) { l.MaxHeaderBytes = 16 << 10 })
			// 100 bytes over: net/http alone allows 4 KiB more.
			over := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
			d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}
			c, err := d.Dial("tcp", tw.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(waitLimit))
			go io.WriteString(c, over+closer) // the server stops reading at the limit
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 431 {
				t.Fatalf("a head over max_header_bytes over TLS: %v %v, want 431", resp, err)
			}
			io.Copy(io.Discard, resp.Body)
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("after the 431: %v, want a clean EOF", err)
			}
		})
	}
}

// TestTLSDrainClosesHandshakes: a drain does not wait on a connection
// still in its TLS handshake (its client silent, read_header_timeout far
// off): it closes it with the other new connections, and the worker
// leaves.
func TestTLSDrainClosesHandshakes(t *testing.T) {
	tw := classTLSSite(t, hclconfig.ClassAsync, false, func(l *hclconfig.Listener) { l.ReadHeaderTimeout = 10 * time.Minute })
	c, err := net.Dial("tcp", tw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tw.sink.waitFor(t, "the silent connection open", func(m map[string]string) bool { return openConns(m) >= 1 })
	tw.sigs <- syscall.SIGTERM
	if err := tw.wait(t); err != nil {
		t.Fatalf("drain: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection got bytes, want a close")
	}
}
