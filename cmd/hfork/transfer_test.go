package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// transferReceipt finds the cut and outlasted counts of listener files.
var transferReceipt = regexp.MustCompile(`listener "files" gen \d+ in \d+ms: \d+ connections handed over, \d+ requests finished while draining, \d+ idle connections closed, (\d+) connections cut \((\d+) at shutdown_timeout\), (\d+) transfers let finish past graceful_timeout`)

// fileConfig is a listener "files" of class class serving root, with a
// one-second graceful_timeout; body tells generations apart.
func fileConfig(port int, class, root, body string) string {
	return fileConfigCap(port, class, root, body, "1m")
}

// fileConfigCap is fileConfig with shutdown_timeout shutdown.
func fileConfigCap(port int, class, root, body, shutdown string) string {
	return fmt.Sprintf(`
pidfile = "hfork.pid"
log {
  format = "json"
  level  = "info"
}
reload { watch = false }
listener "files" {
  bind             = "127.0.0.1:%d"
  class            = %q
  workers          = 1
  graceful_timeout = "1s"
  shutdown_timeout = %q
  %s
  route "/" {
    static { root = %q }
  }
  route "/v/" {
    respond { body = %q }
  }
}
`, port, class, shutdown, replaceLine(body), root, body)
}

// download asks for path on addr and reads the body at about rate bytes
// a second (or, rate 0, reads nothing after the head until stop closes);
// it reports on got the bytes received and the error that ended it.
type download struct {
	got  chan int64
	read chan int64 // the bytes read so far, once past started
	err  error
}

func startDownload(t *testing.T, addr, path string, rate int64, started int64, stop <-chan struct{}) *download {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A small receive buffer: the kernel must not take the file in for us.
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	d := &download{got: make(chan int64, 1), read: make(chan int64, 1)}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path)
	go func() {
		var n int64
		defer func() { d.got <- n }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			d.err = err
			return
		}
		defer resp.Body.Close()
		if rate == 0 {
			d.read <- 0
			<-stop
			n, d.err = io.Copy(io.Discard, resp.Body)
			return
		}
		buf := make([]byte, 32<<10)
		begin := time.Now()
		signalled := false
		for {
			k, err := resp.Body.Read(buf)
			n += int64(k)
			if !signalled && n >= started {
				signalled = true
				d.read <- n
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				d.err = err
				return
			}
			// Pace the reader: a client on a slow link.
			if ahead := time.Duration(n*int64(time.Second)/rate) - time.Since(begin); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}()
	return d
}

// TestReloadKeepsMovingTransfer: a reload replaces the only worker of a
// listener while it sends a 20 MB file to a client reading 4 MB/s, and
// while another client that asked for it stopped reading. With
// graceful_timeout 1s, the moving download must get every byte (it is let
// run past graceful_timeout) and the stalled one must still be cut; the
// receipt counts one of each. For the event loop (async) and net/http
// with sendfile (thread).
func TestReloadKeepsMovingTransfer(t *testing.T) {
	skipShort(t)
	const size, rate = 20 << 20, 4 << 20
	root := t.TempDir()
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"async", "thread"} {
		t.Run(class, func(t *testing.T) {
			port := mustFreePort(t)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			m := startMaster(t, "", fileConfig(port, class, root, "v1"))
			waitBody(t, "http://"+addr+"/v/", "v1")
			stop := make(chan struct{})
			stalled := startDownload(t, addr, "/big.bin", 0, 0, stop)
			<-stalled.read
			moving := startDownload(t, addr, "/big.bin", rate, 2<<20, nil)
			<-moving.read
			m.writeConfig(fileConfig(port, class, root, "v2"))
			code, out, errOut := hforkCmd("-s", "reload", "--wait", "-f", m.cfgPath)
			close(stop)
			if n := <-moving.got; n != size || moving.err != nil {
				t.Errorf("moving download got %d of %d bytes, err %v", n, size, moving.err)
			}
			if n := <-stalled.got; n == size {
				t.Errorf("stalled download got all %d bytes: it was not cut", n)
			}
			if code != exitCut {
				t.Errorf("exit %d, want %d (the stalled client was cut)\n%s%s", code, exitCut, out, errOut)
			}
			r := transferReceipt.FindStringSubmatch(out)
			if r == nil || r[1] != "1" || r[2] != "0" || r[3] != "1" {
				t.Errorf("receipt: want 1 cut, 0 at shutdown_timeout, 1 let finish:\n%s", out)
			}
			waitBody(t, "http://"+addr+"/v/", "v2")
		})
	}
}

// TestReloadCapsMovingTransfer: a transfer still moving is cut at
// shutdown_timeout, and the receipt says so.
func TestReloadCapsMovingTransfer(t *testing.T) {
	skipShort(t)
	const size, rate = 20 << 20, 1 << 20
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "big.bin"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	port := mustFreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	m := startMaster(t, "", fileConfigCap(port, "async", root, "v1", "2s"))
	waitBody(t, "http://"+addr+"/v/", "v1")
	moving := startDownload(t, addr, "/big.bin", rate, 1<<20, nil)
	<-moving.read
	m.writeConfig(fileConfigCap(port, "async", root, "v2", "2s"))
	code, out, errOut := hforkCmd("-s", "reload", "--wait", "-f", m.cfgPath)
	if n := <-moving.got; n == size || moving.err == nil {
		t.Errorf("download got %d of %d bytes, err %v: want it cut at shutdown_timeout", n, size, moving.err)
	}
	if code != exitCut {
		t.Errorf("exit %d, want %d\n%s%s", code, exitCut, out, errOut)
	}
	r := transferReceipt.FindStringSubmatch(out)
	if r == nil || r[1] != "1" || r[2] != "1" || r[3] != "0" {
		t.Errorf("receipt: want 1 cut, 1 at shutdown_timeout, 0 let finish:\n%s", out)
	}
	m.waitLog("worker drain reached shutdown_timeout", 1, 5*time.Second)
}
