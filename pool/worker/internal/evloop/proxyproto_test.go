package evloop

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/worker/app"
)

// proxyV2 is a PROXY protocol v2 header naming the client 198.51.100.9:12345.
const proxyV2 = "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + "\xc6\x33\x64\x09" + "\x7f\x00\x00\x01" + "\x30\x39\x00\x50"

// TestProxyProtocol: with proxy_protocol, raw v1 and v2 headers give the
// access log (and net/http, for a connection handed over) the client's
// address; a connection without one is closed unanswered.
func TestProxyProtocol(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	al, err := app.OpenAccessLog(hclconfig.AccessLog{File: logPath, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	tl := startLoop(t, 8, func(c *Config) { c.Access, c.ProxyProtocol = al, true })
	for _, header := range []string{"PROXY TCP4 192.0.2.7 127.0.0.1 54321 80\r\n", proxyV2} {
		c, br := dial(t, tl.addr)
		// The header alone first, then the request: two reads, or one.
		io.WriteString(c, header)
		if resp, body := get(t, c, br, "/"); resp.StatusCode != 200 || body != "hi\n" {
			t.Errorf("after the header: %d %q", resp.StatusCode, body)
		}
	}
	al.Close()
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), `"remote":"192.0.2.7"`) || !strings.Contains(string(b), `"remote":"198.51.100.9"`) {
		t.Errorf("access log:\n%s", b)
	}

	c, br := dial(t, tl.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, err := br.ReadString('\n'); line != "" || err == nil {
		t.Errorf("without a header: %q %v, want the connection closed", line, err)
	}

	// A request the loop does not answer goes to net/http with the
	// header's client as its remote address.
	c, _ = dial(t, tl.addr)
	io.WriteString(c, "PROXY TCP4 203.0.113.5 127.0.0.1 4000 80\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	select {
	case nc := <-tl.host.adopted:
		defer nc.Close()
		if got := nc.RemoteAddr().String(); got != "203.0.113.5:4000" {
			t.Errorf("handed over with remote %s", got)
		}
		req, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil || req.Method != "POST" {
			t.Errorf("net/http reads %v %v", req, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not handed over")
	}
}
