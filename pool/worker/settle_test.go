package worker

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/hfork/hfork/internal/exemem"
)

// A worker process gives back the pages of the executable its start
// mapped once it serves, and serves on: the pages its answers need fault
// back, not those of everything start-up ran.
func TestMainGivesBackStartupPages(t *testing.T) {
	l := helloListener(t)
	l.EventLoop = true // as an async listener is by default
	p := startWorkerProcessLevel(t, l, "debug", nil)
	const msg = `"start-up pages of the executable given back"`
	waitUntil(t, "the start-up pages given back", func() bool { return strings.Contains(p.stderr.String(), msg) })
	var rec struct {
		Before   uint64 `json:"before_kib"`
		After    uint64 `json:"after_kib"`
		Mappings int    `json:"mappings"`
	}
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		if strings.Contains(line, msg) {
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		}
	}
	t.Logf("executable resident: %d KiB before the release, %d KiB after, %d mappings", rec.Before, rec.After, rec.Mappings)
	// Start-up maps most of a binary that links all of hfork; a worker
	// waiting for its first request needs well under half of that.
	if rec.Mappings == 0 || rec.After >= rec.Before/2 {
		t.Errorf("released %d mappings: %d KiB resident before, %d KiB after", rec.Mappings, rec.Before, rec.After)
	}

	for range 3 {
		resp, err := http.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello\n" {
			t.Fatalf("body %q after the release", body)
		}
	}
	if os.Geteuid() != 0 {
		t.Log("not root: a worker is not dumpable, so its smaps are root's only; the worker's own figures above are checked")
		return
	}
	ms, err := exemem.ProcessMappings(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	now := exemem.Resident(ms) >> 10
	t.Logf("after three answers, from /proc: %d KiB", now)
	// What the answers (and the access log) used came back, not all.
	if now >= rec.Before {
		t.Errorf("the executable's pages resident after three answers: %d KiB, %d KiB before the release", now, rec.Before)
	}
}

// debugLine decodes the last line of the worker's stderr that holds msg.
func debugLine(t *testing.T, p *workerProcess, msg string, rec any) {
	t.Helper()
	var last string
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		if strings.Contains(line, msg) {
			last = line
		}
	}
	if err := json.Unmarshal([]byte(last), rec); err != nil {
		t.Fatalf("%q: %v", last, err)
	}
}

// After a burst of connections it served has passed, a worker returns
// its free memory and gives back the executable's pages that the burst
// mapped, and serves on.
func TestMainGivesBackPagesAfterABurst(t *testing.T) {
	const conns = 256
	l := helloListener(t)
	l.WorkerConnections = conns + 16
	p := startWorkerProcessLevel(t, l, "debug", nil)
	const started, trimmed, released = `"start-up pages of the executable given back"`, `"memory returned to the OS"`, `"executable pages given back after a burst"`
	waitUntil(t, "the start-up pages given back", func() bool { return strings.Contains(p.stderr.String(), started) })

	// The burst: conns keep-alive connections, one request each, held
	// until every one was answered. net/http serves each on a goroutine
	// with its buffers, megabytes in all.
	cs := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cs {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello\n" {
			t.Fatalf("connection %d: body %q", i, body)
		}
	}
	root := os.Geteuid() == 0
	var during uint64
	if root {
		ms, err := exemem.ProcessMappings(p.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		during = exemem.Resident(ms) >> 10
	}
	for _, c := range cs {
		c.Close()
	}
	cs = nil
	waitUntil(t, "the pages given back after the burst", func() bool { return strings.Contains(p.stderr.String(), released) })

	var trim struct {
		Before   uint64 `json:"before_kib"`
		After    uint64 `json:"after_kib"`
		FellFrom int64  `json:"conns_fell_from"`
	}
	debugLine(t, p, trimmed, &trim)
	var rec struct {
		Before   uint64 `json:"before_kib"`
		After    uint64 `json:"after_kib"`
		Mappings int    `json:"mappings"`
	}
	debugLine(t, p, released, &rec)
	t.Logf("trim: %d KiB retained before, %d KiB after (connections fell from %d); executable: %d KiB with the connections open, %d KiB before the release, %d KiB after, %d mappings",
		trim.Before, trim.After, trim.FellFrom, during, rec.Before, rec.After, rec.Mappings)
	if trim.After >= trim.Before {
		t.Errorf("the trim gave nothing back: %d KiB retained before, %d KiB after", trim.Before, trim.After)
	}
	if rec.Mappings == 0 || rec.After >= rec.Before {
		t.Errorf("released %d mappings: executable %d KiB resident before, %d KiB after", rec.Mappings, rec.Before, rec.After)
	}
	if root {
		ms, err := exemem.ProcessMappings(p.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		// What ran since the release (the trim's log line, a look of
		// memtrim's) is a fraction of what the burst had mapped.
		if now := exemem.Resident(ms) >> 10; now >= during {
			t.Errorf("executable resident after the release: %d KiB, with the connections open %d KiB", now, during)
		}
	} else {
		t.Log("not root: a worker is not dumpable, so its smaps are root's only; the worker's own figures above are checked")
	}

	resp, err := http.Get("http://" + p.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello\n" {
		t.Fatalf("body %q after the release", body)
	}
}
