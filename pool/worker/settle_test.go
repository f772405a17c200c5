package worker

import (
	"encoding/json"
	"io"
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
