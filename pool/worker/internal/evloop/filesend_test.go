package evloop

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/pool/worker/app"
	"golang.org/x/sys/unix"
)

// fileFast answers "/<name>" with the file of that name in dir, sent by
// the loop (FileFD); claim, when not 0, is the length it announces and
// asks for instead of the file's, as for a file truncated after its stat.
type fileFast struct {
	dir   string
	claim int64
}

func (f fileFast) ServeFast(req *app.FastRequest, resp *app.FastResponse) bool {
	fh, err := os.Open(filepath.Join(f.dir, strings.TrimPrefix(req.Path, "/")))
	if err != nil {
		return false
	}
	fi, _ := fh.Stat()
	size := fi.Size()
	if f.claim != 0 {
		size = f.claim
	}
	// A dup: the loop closes the fd, the *os.File must not close it too.
	fd, err := dupFD(fh)
	fh.Close()
	if err != nil {
		return false
	}
	resp.Status = 200
	resp.Head = []byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.FormatInt(size, 10) + "\r\n")
	resp.FileFD, resp.FileSize = fd, size
	return true
}
func (fileFast) FastRoutes() bool              { return true }
func (fileFast) FastProxies() []*app.FastProxy { return nil }

// Small files go out in the write of their head, larger ones by sendfile;
// either way a keep-alive connection gets every byte, HEAD gets none, and
// pipelined requests behind a file are answered in order.
func TestLoopSendsFiles(t *testing.T) {
	dir := t.TempDir()
	sizes := map[string]int{"small": 4096, "edge": inlineFileMax, "big": inlineFileMax + 1, "large": 300 << 10}
	want := map[string]string{}
	for name, n := range sizes {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*31 + len(name))
		}
		want[name] = string(b)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := startLoop(t, 8, func(c *Config) { c.Fast = fileFast{dir: dir} })
	c, err := net.Dial("tcp", l.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	order := []string{"small", "big", "edge", "large", "small"}
	var reqs strings.Builder
	for _, name := range order {
		reqs.WriteString("GET /" + name + " HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	reqs.WriteString("HEAD /small HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.WriteString(c, reqs.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, name := range order {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d (%s): %v", i, name, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != want[name] {
			t.Fatalf("answer %d (%s): %d bytes, %v; want the file's %d", i, name, len(got), err, sizes[name])
		}
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil || resp.ContentLength != int64(sizes["small"]) {
		t.Fatalf("HEAD: %v, length %d", err, resp.ContentLength)
	}
	// Nothing follows the HEAD answer's head: the next answer starts
	// right after it.
	if _, err := io.WriteString(c, "GET /small HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after HEAD: %v", err)
	}
}

// A file shorter than its announced length (truncated after its stat)
// cannot fill its Content-Length: the client gets what there is and the
// connection closes, small file or large.
func TestLoopFileTruncatedUnderUs(t *testing.T) {
	dir := t.TempDir()
	for name, n := range map[string]int{"small": 1000, "large": 100 << 10} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, claim := range map[string]int64{"small": 2000, "large": 200 << 10} {
		l := startLoop(t, 8, func(c *Config) { c.Fast = fileFast{dir: dir, claim: claim} })
		c, err := net.Dial("tcp", l.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /"+name+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != io.ErrUnexpectedEOF || int64(len(got)) >= claim {
			t.Errorf("%s: read %d of %d announced bytes, %v; want the file's bytes, then the connection closed", name, len(got), claim, err)
		}
		c.Close()
	}
}

func dupFD(f *os.File) (int, error) {
	return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
}
