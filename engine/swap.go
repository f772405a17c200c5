package engine

import (
	"fmt"
	"strings"
	"time"
)

// SwapTook is one listener's swap in a committed reload: how many workers
// switched, and the time from the master's request to the last worker's
// answer.
type SwapTook struct {
	Listener string `json:"listener"`
	Workers  int    `json:"workers"`
	TookUS   int64  `json:"took_us"`
}

func (s SwapTook) String() string {
	return fmt.Sprintf("  swapped  listener %q: %d workers in %.3fms", s.Listener, s.Workers, float64(s.TookUS)/1000)
}

// swapLines renders a reload's swaps under its plan.
func swapLines(swaps []SwapTook) string {
	var b strings.Builder
	for _, s := range swaps {
		b.WriteString("\n" + s.String())
	}
	return b.String()
}

// startSwaps asks the pools of the plan's Swap changes to swap in place.
func (m *Master) startSwaps(op *reloadOp) {
	for _, ch := range op.plan.Listeners {
		if ch.Action == Swap {
			p := m.pools[ch.Listener]
			op.swapping = append(op.swapping, p)
			p.Swap(ch.New)
		}
	}
}

// swapsDone reports whether every swap of op has its answer; err is the
// first that failed.
func swapsDone(op *reloadOp) (bool, error) {
	done := true
	for _, p := range op.swapping {
		res, ok := p.Swapped()
		if ok && res.Err != nil {
			return true, res.Err
		}
		done = done && ok
	}
	return done, nil
}

// endSwaps keeps or rolls back every swap of op, and returns what the kept
// ones took.
func (m *Master) endSwaps(op *reloadOp, keep bool) []SwapTook {
	var out []SwapTook
	for _, p := range op.swapping {
		if res, ok := p.Swapped(); ok && res.Err == nil && keep {
			t := SwapTook{Listener: p.Listener().Name, Workers: res.Workers, TookUS: res.Took.Microseconds()}
			out = append(out, t)
			m.hist.swapped(t.Listener, res.Took)
		} else if !keep || !ok {
			m.hist.swapFailed(p.Listener().Name)
		}
		p.EndSwap(keep)
	}
	return out
}

// swapStats are one listener's swaps, for the metrics.
type swapStats struct {
	ok, failed uint64
	sum        time.Duration
	buckets    []uint64 // per swapBuckets, not cumulative; one more for longer
}

// swapBuckets are the bounds of the swap latency histogram.
var swapBuckets = []time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond, time.Second,
}

func (h *history) swapStat(listener string) *swapStats {
	if h.swaps == nil {
		h.swaps = map[string]*swapStats{}
	}
	s := h.swaps[listener]
	if s == nil {
		s = &swapStats{buckets: make([]uint64, len(swapBuckets)+1)}
		h.swaps[listener] = s
	}
	return s
}

func (h *history) swapped(listener string, took time.Duration) {
	s := h.swapStat(listener)
	s.ok++
	s.sum += took
	b := 0
	for b < len(swapBuckets) && took > swapBuckets[b] {
		b++
	}
	s.buckets[b]++
}

func (h *history) swapFailed(listener string) { h.swapStat(listener).failed++ }
