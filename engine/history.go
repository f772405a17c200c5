package engine

import (
	"maps"
	"os"
	"slices"
	"time"

	"github.com/hfork/hfork/pool"
)

// Event is the last reload or upgrade, as status shows it.
type Event struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	// Plan is the reload's plan ("" when nothing changed or it failed).
	Plan string `json:"plan"`
	// TookMS is how long it ran, in milliseconds.
	TookMS int64 `json:"took_ms"`
	// Result is "ok", "unchanged" or "failed".
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	// Swaps are the listeners a reload swapped in place, with the time
	// each took.
	Swaps []SwapTook `json:"swaps,omitempty"`
}

// history is what the master remembers for status and metrics beyond what
// its pools hold: the last reload and upgrade, counts of both by result,
// and the totals of generations that are gone, so that no counter goes
// backwards when a generation retires.
type history struct {
	started     time.Time
	lastReload  *Event
	lastUpgrade *Event
	reloads     map[string]uint64 // by result: ok, unchanged, config, bind, boot, shutdown
	upgrades    map[string]uint64 // by result: ok, failed
	gone        map[string]*goneTotals
	rates       rates
	swaps       map[string]*swapStats // by listener (swap.go)
}

// goneTotals are the counters of a listener's retired generations.
type goneTotals struct {
	counters     pool.Counters
	restarts     map[string]uint64
	bootFailures map[string]uint64
}

func newHistory() history {
	return history{started: time.Now(), reloads: map[string]uint64{}, upgrades: map[string]uint64{}, gone: map[string]*goneTotals{}}
}

// retire keeps the totals of a generation that just ended.
func (h *history) retire(s pool.Snapshot) {
	g := h.gone[s.Listener]
	if g == nil {
		g = &goneTotals{restarts: map[string]uint64{}, bootFailures: map[string]uint64{}}
		h.gone[s.Listener] = g
	}
	g.counters.Add(s.Counters)
	for k, v := range s.Restarts {
		g.restarts[k] += v
	}
	for k, v := range s.BootFailures {
		g.bootFailures[k] += v
	}
}

// noteReload records a reload's outcome.
func (m *Master) noteReload(start time.Time, res ReloadResult, asks []reloadAsk) {
	e := &Event{At: start, Plan: res.Plan, TookMS: time.Since(start).Milliseconds(), Result: "ok"}
	if len(asks) > 0 {
		e.Reason = asks[0].reason
	}
	label := "ok"
	switch {
	case res.Err != nil:
		e.Result, e.Error = "failed", res.Err.Error()
		label = "shutdown"
		if re, ok := res.Err.(*ReloadError); ok {
			label = re.Stage
		}
	case res.Plan == "":
		e.Result, label = "unchanged", "unchanged"
	}
	m.hist.lastReload = e
	m.hist.reloads[label]++
}

// noteUpgrade records an upgrade's outcome: in the old master when it
// fails or the new one is ready, in the new master once it is.
func (m *Master) noteUpgrade(start time.Time, err error) {
	e := &Event{At: start, TookMS: time.Since(start).Milliseconds(), Result: "ok"}
	if err != nil {
		e.Result, e.Error = "failed", err.Error()
	}
	m.hist.lastUpgrade = e
	m.hist.upgrades[e.Result]++
}

// view is a copy of everything status and metrics show, taken by the loop
// and read by other goroutines.
type view struct {
	pid         int
	version     string
	started     time.Time
	now         time.Time
	current     []pool.Snapshot // the serving generation, in config order
	draining    []pool.Snapshot // retiring generations
	staged      []pool.Snapshot // a reload's new generation, not yet serving
	lastReload  *Event
	lastUpgrade *Event
	reloads     map[string]uint64
	upgrades    map[string]uint64
	gone        map[string]goneTotals
	swaps       map[string]swapStats
	config      *ConfigStatus
}

// viewAsk asks the loop for a view.
type viewAsk struct{ reply chan<- view }

func (m *Master) takeView() view {
	now := time.Now()
	v := view{pid: os.Getpid(), version: m.opts.Version, started: m.hist.started, now: now,
		lastReload: m.hist.lastReload, lastUpgrade: m.hist.lastUpgrade,
		reloads: maps.Clone(m.hist.reloads), upgrades: maps.Clone(m.hist.upgrades), gone: map[string]goneTotals{},
		config: m.configStatus()}
	for _, l := range m.cfg.Listeners {
		if p := m.pools[l.Name]; p != nil {
			v.current = append(v.current, p.Snapshot(now))
		}
	}
	for _, p := range m.retiring {
		v.draining = append(v.draining, p.Snapshot(now))
	}
	if m.op != nil {
		for _, p := range m.op.staged {
			v.staged = append(v.staged, p.Snapshot(now))
		}
	}
	v.swaps = map[string]swapStats{}
	for name, s := range m.hist.swaps {
		c := *s
		c.buckets = slices.Clone(s.buckets)
		v.swaps[name] = c
	}
	for name, g := range m.hist.gone {
		var c pool.Counters
		c.Add(g.counters)
		v.gone[name] = goneTotals{counters: c, restarts: maps.Clone(g.restarts), bootFailures: maps.Clone(g.bootFailures)}
	}
	return v
}
