package pool

import (
	"bufio"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// swapLines reads what a worker's control pipe carries after its Spec:
// the swaps it was sent, until want of them arrived.
func swapsSent(t *testing.T, br *bufio.Reader, want int) []wire.Command {
	t.Helper()
	var out []wire.Command
	for len(out) < want {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("control pipe: %v", err)
		}
		var c wire.Command
		if json.Unmarshal(line, &c) == nil && c.Swap != nil {
			out = append(out, c)
		}
	}
	return out
}

func withBody(body string) hclconfig.Listener {
	l := testListener(hclconfig.ClassAsync, 2)
	l.Routes = []hclconfig.Route{{Prefix: "/", App: "respond", Respond: hclconfig.Respond{Status: 200, Body: body}}}
	return l
}

func readySwapPool(t *testing.T) (*Pool, *fakeOS, map[int]*bufio.Reader) {
	t.Helper()
	f := newFakeOS(t)
	p, _ := newTestPool(t, f, withBody("a"), false)
	p.Start()
	pipes := map[int]*bufio.Reader{}
	for _, pid := range []int{1001, 1002} {
		notify(p, f, pid, "READY=1")
		pipes[pid] = bufio.NewReader(f.controls[pid])
		if _, err := wire.ReadSpec(pipes[pid]); err != nil {
			t.Fatal(err)
		}
	}
	return p, f, pipes
}

// A swap is sent to every worker and done once both confirmed; a worker
// started meanwhile boots with the new Spec, and the metrics follow each
// worker's routes from its confirmation on.
func TestSwapConfirmed(t *testing.T) {
	p, f, pipes := readySwapPool(t)
	next := withBody("b")
	next.Routes = append(next.Routes, hclconfig.Route{Prefix: "/new/", App: "respond"})
	p.Swap(next)
	var id uint64
	for pid, br := range pipes {
		c := swapsSent(t, br, 1)[0]
		if c.Swap.Routes[0].Respond.Body != "b" || c.SwapID == 0 {
			t.Fatalf("worker %d was sent %+v", pid, c)
		}
		id = c.SwapID
	}
	if _, ok := p.Swapped(); ok {
		t.Fatal("swap done before any worker answered")
	}
	f.now = f.now.Add(2 * time.Millisecond)
	notify(p, f, 1001, wire.SwapNotice(id, nil))
	if _, ok := p.Swapped(); ok {
		t.Fatal("swap done with one worker of two")
	}
	if got := p.find(1001).routes; len(got) != 3 || got[1] != (Route{Prefix: "/new/"}) {
		t.Errorf("routes of the confirmed worker: %v", got)
	}
	if got := p.find(1002).routes; len(got) != 2 {
		t.Errorf("routes of the worker still to confirm: %v", got)
	}
	notify(p, f, 1001, wire.SwapNotice(id+100, nil)) // another swap's: ignored
	f.now = f.now.Add(time.Millisecond)
	notify(p, f, 1002, wire.SwapNotice(id, nil))
	res, ok := p.Swapped()
	if !ok || res.Err != nil || res.Workers != 2 || res.Took != 3*time.Millisecond {
		t.Fatalf("Swapped() = %+v, %v; want 2 workers in 3ms", res, ok)
	}
	p.EndSwap(true)
	if p.Listener().Routes[0].Respond.Body != "b" {
		t.Error("the pool's Spec is not the swapped config")
	}
	p.Scale(3, "test")
	br := bufio.NewReader(f.controls[1003])
	spec, err := wire.ReadSpec(br)
	if err != nil || spec.Listener.Routes[0].Respond.Body != "b" {
		t.Errorf("a worker started after the swap got %+v, %v", spec.Listener.Routes, err)
	}
}

// One refusal fails the swap at once; ending it unkept sends the old
// config back to the worker that switched and to the one that had not
// answered yet, but not to the one that refused.
func TestSwapRefusedRollsBack(t *testing.T) {
	p, f, pipes := readySwapPool(t)
	p.Swap(withBody("b"))
	id := swapsSent(t, pipes[1001], 1)[0].SwapID
	swapsSent(t, pipes[1002], 1)
	notify(p, f, 1001, wire.SwapNotice(id, errors.New("open access log: too many open files")))
	res, ok := p.Swapped()
	if !ok || !errors.Is(res.Err, ErrSwapFailed) || !strings.Contains(res.Err.Error(), "worker 1001 refused: open access log: too many open files") {
		t.Fatalf("Swapped() = %+v, %v", res, ok)
	}
	p.EndSwap(false)
	if p.Listener().Routes[0].Respond.Body != "a" {
		t.Error("the pool's Spec is not the old config after the rollback")
	}
	back := swapsSent(t, pipes[1002], 1)[0]
	if back.Swap.Routes[0].Respond.Body != "a" || back.SwapID == id {
		t.Fatalf("rollback sent %+v", back)
	}
	// The late answer to the swap undone counts for nothing; the
	// rollback's completes it.
	notify(p, f, 1002, wire.SwapNotice(id, nil))
	notify(p, f, 1002, wire.SwapNotice(back.SwapID, nil))
	if p.unswap != nil {
		t.Error("rollback still in flight after its only worker answered")
	}
	if p.find(1002).spec.Routes[0].Respond.Body != "a" {
		t.Error("worker 1002 is not known to run the old config again")
	}
	// Nothing was sent to the worker that refused.
	p.SetLog("debug", "json")
	line, _ := pipes[1001].ReadBytes('\n')
	var c wire.Command
	if json.Unmarshal(line, &c); c.Swap != nil || c.LogLevel != "debug" {
		t.Errorf("the refusing worker was sent %s", line)
	}
}

// A worker that does not answer within swapAnswerWait fails the swap; one
// that exits meanwhile is not waited for.
func TestSwapUnanswered(t *testing.T) {
	p, f, pipes := readySwapPool(t)
	p.Swap(withBody("b"))
	id := swapsSent(t, pipes[1001], 1)[0].SwapID
	notify(p, f, 1001, wire.SwapNotice(id, nil))
	f.now = f.now.Add(swapAnswerWait + time.Millisecond)
	p.Tick(f.now)
	res, ok := p.Swapped()
	if !ok || !errors.Is(res.Err, ErrSwapFailed) || !strings.Contains(res.Err.Error(), "workers [1002] did not answer") {
		t.Fatalf("Swapped() = %+v, %v", res, ok)
	}
	p.EndSwap(false)

	p2, f2, _ := readySwapPool(t)
	p2.Swap(withBody("c"))
	exit(t, p2, f2, 1001, 0)
	id2 := p2.swap.id
	notify(p2, f2, 1002, wire.SwapNotice(id2, nil))
	if res, ok := p2.Swapped(); !ok || res.Err != nil || res.Workers != 1 {
		t.Fatalf("swap with a worker gone: %+v, %v", res, ok)
	}
}
