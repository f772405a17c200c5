package worker

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/http2"

	"github.com/hfork/hfork/hclconfig"
)

// TestH2AnswersAsNetHTTP asks hfork's HTTP/2 server and net/http's the
// same questions, on the fast path and off it, and compares.
func TestH2AnswersAsNetHTTP(t *testing.T) {
	up := echoUpstream(t)
	l := h2Site(t, up.URL)
	ours, _ := startH2Site(t, l, "hfork")
	l.EventLoop = false
	theirs, _ := startH2Site(t, l, "net/http")
	c := h2Client()
	post := bytes.Repeat([]byte("0123456789"), 50<<10) // 500 KiB: past every initial window
	for _, q := range []struct {
		method, path string
		body         []byte
		hdr          []string
	}{
		{"GET", "/", nil, nil},
		{"HEAD", "/", nil, nil},
		{"GET", "/static/4k.txt", nil, nil},
		{"GET", "/static/big.txt", nil, nil},
		{"HEAD", "/static/big.txt", nil, nil},
		{"GET", "/static/nope", nil, nil},
		{"GET", "/static/a%20b.txt", nil, nil},                            // escaped: net/http's
		{"GET", "/static/big.txt", nil, []string{"Range", "bytes=10-19"}}, // Range: net/http's
		{"GET", "/old/x?y=1", nil, nil},
		{"GET", "/static/../x", nil, nil},
		{"POST", "/up/echo", post, nil}, // a body: the handler's, under flow control
		{"PUT", "/up/small", []byte("tiny"), nil},
		{"GET", "/up/get", nil, nil},
	} {
		a := h2Do(t, c, q.method, "https://"+ours.addr+q.path, q.body, q.hdr...)
		b := h2Do(t, c, q.method, "https://"+theirs.addr+q.path, q.body, q.hdr...)
		name := q.method + " " + q.path
		if a.status != b.status || a.body != b.body {
			t.Errorf("%s: hfork %d %d bytes, net/http %d %d bytes", name, a.status, len(a.body), b.status, len(b.body))
		}
		for _, k := range []string{"Content-Type", "Content-Length", "Location", "Etag", "Last-Modified", "Content-Range", "X-Method"} {
			if a.header.Get(k) != b.header.Get(k) {
				t.Errorf("%s: %s hfork %q, net/http %q", name, k, a.header.Get(k), b.header.Get(k))
			}
		}
		if a.header.Get("Date") == "" {
			t.Errorf("%s: no Date", name)
		}
	}
}

// TestH2FlowControlOverTheWire reads a 300 KiB file through a 1000-byte
// stream window: the server sends no byte past the window and finishes
// as the client opens it.
func TestH2FlowControlOverTheWire(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	r := dialH2(t, tw.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	r.get(1, "/static/big.txt")
	window, got := 1000, 0
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			continue
		}
		n := len(d.Data())
		if n > window {
			t.Fatalf("a DATA frame of %d bytes in a window of %d", n, window)
		}
		window -= n
		got += n
		if d.StreamEnded() {
			break
		}
		if window == 0 {
			r.fr.WriteWindowUpdate(1, 1000)
			r.fr.WriteWindowUpdate(0, 1000)
			window = 1000
		}
	}
	if got != 300<<10 {
		t.Fatalf("%d bytes, want %d", got, 300<<10)
	}
}

// TestH2AccessLogAndMetrics: fast answers are logged like HTTP/1.1's.
func TestH2AccessLog(t *testing.T) {
	l := h2Site(t, "")
	l.AccessLog = hclconfig.AccessLog{File: filepath.Join(t.TempDir(), "access.log"), Format: "combined"}
	tw, _ := startH2Site(t, l, "hfork")
	c := h2Client()
	req, _ := http.NewRequest("GET", "https://"+tw.addr+"/hi?x=1", nil)
	req.Header.Set("User-Agent", "h2-test")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h2Do(t, c, "GET", "https://"+tw.addr+"/static/nope", nil)
	tw.sigs <- syscall.SIGTERM
	tw.wait(t)
	var data []byte
	waitUntil(t, "two access log lines", func() bool {
		data, _ = os.ReadFile(l.AccessLog.File)
		return bytes.Count(data, []byte("\n")) >= 2
	})
	for _, want := range []string{`"GET /hi?x=1 HTTP/2.0" 200 14 "-" "h2-test"`, `"GET /static/nope HTTP/2.0" 404`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("access log lacks %q:\n%s", want, data)
		}
	}
}

// TestH2Clients runs curl and h2load, where installed, against the
// worker: bounded counts on loopback.
func TestH2Clients(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	url := "https://" + tw.addr
	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("no curl")
		}
		out, err := exec.Command("curl", "-sk", "--http2", "-w", " %{http_version} %{http_code}", url+"/", url+"/static/4k.txt").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		if s := string(out); !strings.HasPrefix(s, "hello, world!\n 2 200") || !strings.HasSuffix(s, strings.Repeat("abcd", 1024)+" 2 200") {
			t.Fatalf("curl said %q", s)
		}
	})
	t.Run("h2load", func(t *testing.T) {
		if _, err := exec.LookPath("h2load"); err != nil {
			t.Skip("no h2load")
		}
		out, err := exec.Command("h2load", "-n", "2000", "-c", "4", "-m", "10", url+"/static/4k.txt").CombinedOutput()
		if err != nil {
			t.Fatalf("h2load: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "2000 succeeded, 0 failed, 0 errored") || !strings.Contains(string(out), "2000 2xx") {
			t.Fatalf("h2load:\n%s", out)
		}
	})
}

// TestH2LargeWindowNoUpdates: with windows larger than the file, the
// whole file comes without a WINDOW_UPDATE, though the server puts only
// a chunk of it in the output at a time.
func TestH2LargeWindowNoUpdates(t *testing.T) {
	tw, _ := startH2Site(t, h2Site(t, ""), "hfork")
	r := dialH2(t, tw.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	r.fr.WriteWindowUpdate(0, 1<<31-1-65535)
	r.get(1, "/static/big.txt")
	got := 0
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
			if d.StreamEnded() {
				break
			}
		}
	}
	if got != 300<<10 {
		t.Fatalf("%d bytes, want %d", got, 300<<10)
	}
}
