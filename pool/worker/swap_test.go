package worker

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

// A request in flight when the worker swaps its table ends under the old
// one (its proxy, its access log); requests after the swap meet the new
// routes; the old access log is closed, and so flushed, once that last
// request ended. A swap that does not build, or that changes more than a
// swap may, leaves the table as it was.
func TestSwapKeepsRequestOnItsTable(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.Write([]byte("slow"))
	}))
	defer up.Close()
	dir := t.TempDir()
	cfg := func(body, log string) hclconfig.Listener {
		l := testListener(hclconfig.ClassThread)
		l.AccessLog = hclconfig.AccessLog{File: filepath.Join(dir, log), Format: "combined"}
		l.Routes = []hclconfig.Route{
			{Prefix: "/slow/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{up.URL}, Policy: "round_robin"}},
			{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{Status: 200, Body: body}},
		}
		return l
	}
	w := serveWorker(t, hclconfig.ClassThread, nil)
	w.log = slog.New(slog.DiscardHandler)
	first, err := buildTable(cfg("one", "a.log"), w.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.useTable(first)
	get := func(path string) string {
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Body.String()
	}
	if got := get("/"); got != "one" {
		t.Fatalf("before the swap: %q", got)
	}
	slow := make(chan string)
	go func() { slow <- get("/slow/x") }()
	<-arrived
	if err := w.install(cfg("two", "b.log")); err != nil {
		t.Fatal(err)
	}
	if got := get("/"); got != "two" {
		t.Errorf("after the swap: %q, want two", got)
	}
	read := func(name string) string { b, _ := os.ReadFile(filepath.Join(dir, name)); return string(b) }
	if strings.Contains(read("a.log"), "/slow/x") {
		t.Fatal("the request in flight was logged before it ended")
	}
	close(release)
	if got := <-slow; got != "slow" {
		t.Errorf("the request in flight got %q", got)
	}
	// Its line was written to the old log, which its end closed (and so
	// flushed); the new log got the request after the swap.
	if a := read("a.log"); !strings.Contains(a, "GET /slow/x") || strings.Count(a, "\n") != 2 {
		t.Errorf("old access log:\n%s", a)
	}
	if selfHolds(filepath.Join(dir, "a.log")) {
		t.Error("the old table's access log is still open")
	}

	bad := cfg("three", "b.log")
	bad.Routes = append(bad.Routes, hclconfig.Route{Prefix: "/s/", App: hclconfig.AppStatic, Static: hclconfig.Static{Root: filepath.Join(dir, "missing")}})
	if err := w.install(bad); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("swap to a missing static root: %v", err)
	}
	other := cfg("three", "b.log")
	other.Timeout *= 2
	if err := w.install(other); err == nil || !strings.Contains(err.Error(), "changes more than") {
		t.Errorf("swap of the timeout: %v", err)
	}
	if got := get("/"); got != "two" {
		t.Errorf("after refused swaps: %q, want two", got)
	}
	if err := w.tabs.closeAccess(); err != nil {
		t.Fatal(err)
	}
	if b := read("b.log"); strings.Count(b, "GET / ") != 2 { // after the swap, after the refused ones
		t.Errorf("new access log:\n%s", b)
	}
}

// selfHolds reports whether this process has path open.
func selfHolds(path string) bool {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if to, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && to == path {
			return true
		}
	}
	return false
}
