package engine

import (
	"testing"
	"time"

	"github.com/hfork/hfork/pool"
)

func viewWith(now time.Time, requests map[string]uint64) view {
	v := view{now: now, gone: map[string]goneTotals{}}
	for name, n := range requests {
		v.current = append(v.current, pool.Snapshot{Listener: name,
			Counters: pool.Counters{Codes: map[pool.Route][5]uint64{{Prefix: "/"}: {0, n, 0, 0, 0}}}})
	}
	return v
}

// TestRates: per-second rates from cumulative samples, a window of one
// minute, and a listener that appears late starts its own series.
func TestRates(t *testing.T) {
	var r rates
	t0 := time.Unix(1000, 0)
	for i := range 70 {
		reqs := map[string]uint64{"web": uint64(10 * i)}
		if i >= 65 {
			reqs["api"] = uint64(3 * (i - 65))
		}
		r.sample(viewWith(t0.Add(time.Duration(i)*time.Second), reqs))
	}
	web := r.perSecond("web")
	if len(web) != rateWindow {
		t.Fatalf("web has %d points, want %d", len(web), rateWindow)
	}
	for i, v := range web {
		if v != 10 {
			t.Fatalf("web[%d] = %v, want 10", i, v)
		}
	}
	api := r.perSecond("api")
	if len(api) != 4 || api[0] != 3 {
		t.Errorf("api = %v, want four points of 3", api)
	}
}

// TestReceiptSettles: a receipt is sent once every retired generation is
// gone, with each one's drain counts.
func TestReceiptSettles(t *testing.T) {
	m := &Master{}
	a, b := &pool.Pool{}, &pool.Pool{}
	ch := make(chan Receipt, 1)
	m.awaitReceipt([]reloadAsk{{receipt: ch}, {}}, []*pool.Pool{a, b}, nil)
	m.settleReceipts(a, pool.Snapshot{Listener: "web", Gen: 1, Counters: pool.Counters{Drain: pool.DrainCounts{HandedOver: 3}}})
	select {
	case r := <-ch:
		t.Fatalf("receipt before every generation was gone: %+v", r)
	default:
	}
	m.settleReceipts(b, pool.Snapshot{Listener: "api", Gen: 2, Counters: pool.Counters{Drain: pool.DrainCounts{Cut: 1}}})
	r := <-ch
	if len(r.Listeners) != 2 || r.Listeners[0].HandedOver != 3 || r.Cut() != 1 || len(m.receipts) != 0 {
		t.Errorf("receipt %+v, pending %d", r, len(m.receipts))
	}
	m.awaitReceipt([]reloadAsk{{receipt: ch}}, nil, nil)
	if r := <-ch; len(r.Listeners) != 0 {
		t.Errorf("a reload that retired nothing: %+v", r)
	}
}

func TestNoteReloadLabels(t *testing.T) {
	m := &Master{hist: newHistory()}
	start := time.Now()
	m.noteReload(start, ReloadResult{Plan: "  start    listener \"a\""}, nil)
	m.noteReload(start, ReloadResult{}, nil)
	m.noteReload(start, failed(errText("config", "server.hcl:3,1: bad")), nil)
	m.noteReload(start, failed(ErrShuttingDown), nil)
	want := map[string]uint64{"ok": 1, "unchanged": 1, "config": 1, "shutdown": 1}
	for k, n := range want {
		if m.hist.reloads[k] != n {
			t.Errorf("reloads[%s] = %d, want %d (%v)", k, m.hist.reloads[k], n, m.hist.reloads)
		}
	}
	if e := m.hist.lastReload; e.Result != "failed" || e.Error != ErrShuttingDown.Error() {
		t.Errorf("last reload %+v", e)
	}
}
