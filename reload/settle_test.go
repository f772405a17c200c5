package reload

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestInPlaceWriteInTwoParts: a file rewritten in place whose writer pauses after a first
// part that is itself a valid config is not announced until it is whole. The second part
// is written once the watcher has read the first (its log says so), while it waits to read
// the file again; one request follows, for the whole file.
func TestInPlaceWriteInTwoParts(t *testing.T) {
	saved := minSettle
	minSettle = time.Second // room for the test to write between the two reads
	t.Cleanup(func() { minSettle = saved })

	first := "listener \"a\" {\n  bind = \":8080\"\n}\n"
	second := "listener \"b\" {\n  bind = \":8081\"\n}\n"
	path := configFile(t, oldConfig)
	w, logs := start(t, path, true)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	_, err = f.WriteString(first)
	must(t, err)
	waitLog(t, logs, "reading it again before the reload")
	_, err = f.WriteString(second)
	must(t, err)
	must(t, f.Close())

	expectFileRequest(t, w)
	queued := fmt.Sprintf("reload queued\" file=%s bytes=%d", path, len(first+second))
	if !strings.Contains(logs.String(), queued) {
		t.Errorf("the request was not for the whole file (want a log line with %q)", queued)
	}
	if strings.Contains(logs.String(), fmt.Sprintf("reload queued\" file=%s bytes=%d", path, len(first))) {
		t.Errorf("the first part alone was announced")
	}
}
