package pool

import (
	"bufio"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// A hurried draining pool tells its built-in worker to end its drain
// within the grace (a HurryMS command after the Spec) and kills it a
// second after that, long before graceful_timeout; a second Hurry does
// nothing more.
func TestHurryShortensDrain(t *testing.T) {
	f := newFakeOS(t)
	l := testListener(hclconfig.ClassAsync, 1)
	l.GracefulTimeout, l.ShutdownTimeout = time.Minute, time.Hour
	p, _ := newTestPool(t, f, l, false)
	p.Start()
	notify(p, f, 1001, "READY=1")
	p.Drain("replaced")
	p.Hurry(500*time.Millisecond, "over max_draining_generations")
	p.Hurry(time.Millisecond, "again")
	br := bufio.NewReader(f.controls[1001])
	if _, err := wire.ReadSpec(br); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadBytes('\n')
	var c wire.Command
	if err != nil || json.Unmarshal(line, &c) != nil || c.HurryMS != 500 {
		t.Fatalf("line after the Spec: %q (%v), want hurry_ms 500", line, err)
	}
	if !p.Hurried() {
		t.Error("Hurried() = false")
	}
	f.now = f.now.Add(1400 * time.Millisecond)
	p.Tick(f.now)
	if got := f.signals(1001); len(got) != 1 || got[0] != syscall.SIGTERM {
		t.Fatalf("signals before the hurried deadline: %v, want only SIGTERM", got)
	}
	f.now = f.now.Add(200 * time.Millisecond)
	p.Tick(f.now)
	if got := f.signals(1001); len(got) != 2 || got[1] != syscall.SIGKILL {
		t.Fatalf("signals after grace + drainReportGrace: %v, want SIGTERM then SIGKILL", got)
	}
}
