package engine

import (
	"fmt"
	"io"
	"time"

	"github.com/hfork/hfork/pool"
)

// Receipt is what `hfork -s reload --wait` prints once the generations a
// reload retired are gone: per listener, what their drain did with the
// connections they held.
type Receipt struct {
	Listeners []ListenerReceipt `json:"listeners"`
	// Swaps are the listeners the reload swapped in place: no generation
	// of theirs was retired.
	Swaps []SwapTook `json:"swaps,omitempty"`
}

// ListenerReceipt is one retired generation's drain.
type ListenerReceipt struct {
	Listener string `json:"listener"`
	Gen      int    `json:"gen"`
	pool.DrainCounts
	// TookMS is from the reload's commit to the generation's last exit.
	TookMS int64 `json:"took_ms"`
}

// Cut counts the connections a drain cut.
func (r Receipt) Cut() uint64 {
	var n uint64
	for _, l := range r.Listeners {
		n += l.Cut
	}
	return n
}

// WriteReceipt prints r for a terminal.
func WriteReceipt(out io.Writer, r Receipt) {
	for _, s := range r.Swaps {
		fmt.Fprintln(out, "swapped in place:"+s.String()[len("  swapped "):])
	}
	if len(r.Listeners) == 0 {
		fmt.Fprintln(out, "drained: no generation was retired")
		return
	}
	fmt.Fprintln(out, "drained:")
	for _, l := range r.Listeners {
		fmt.Fprintf(out, "  listener %q gen %d in %dms: %d connections handed over, %d requests finished while draining, %d idle connections closed, %d connections cut (%d at shutdown_timeout), %d transfers let finish past graceful_timeout, %d closed early over max_draining_generations\n",
			l.Listener, l.Gen, l.TookMS, l.HandedOver, l.Finished, l.IdleClosed, l.Cut, l.CutAtShutdown, l.Outlasted, l.Bounded)
	}
}

// receiptWait is a receipt owed to askers of a reload, once every pool it
// retired is gone.
type receiptWait struct {
	since   time.Time
	pending map[*pool.Pool]bool
	receipt Receipt
	to      []chan<- Receipt
}

// awaitReceipt registers the askers of a committed reload that wait for
// its drain; retired are the generations it drains.
func (m *Master) awaitReceipt(asks []reloadAsk, retired []*pool.Pool, swaps []SwapTook) {
	w := &receiptWait{since: time.Now(), pending: map[*pool.Pool]bool{}, receipt: Receipt{Swaps: swaps}}
	for _, a := range asks {
		if a.receipt != nil {
			w.to = append(w.to, a.receipt)
		}
	}
	if len(w.to) == 0 {
		return
	}
	for _, p := range retired {
		w.pending[p] = true
	}
	m.receipts = append(m.receipts, w)
	m.settleReceipts(nil, pool.Snapshot{})
}

// settleReceipts records that gone (when not nil) has exited, with its
// last snapshot, and sends every receipt whose generations are all gone.
func (m *Master) settleReceipts(gone *pool.Pool, s pool.Snapshot) {
	kept := m.receipts[:0]
	for _, w := range m.receipts {
		if gone != nil && w.pending[gone] {
			delete(w.pending, gone)
			w.receipt.Listeners = append(w.receipt.Listeners, ListenerReceipt{Listener: s.Listener, Gen: s.Gen,
				DrainCounts: s.Counters.Drain, TookMS: time.Since(w.since).Milliseconds()})
		}
		if len(w.pending) > 0 {
			kept = append(kept, w)
			continue
		}
		for _, ch := range w.to {
			select {
			case ch <- w.receipt:
			default:
			}
		}
	}
	clear(m.receipts[len(kept):])
	m.receipts = kept
}

// answerReceipts gives askers of a reload that retired nothing their
// (empty) receipt at once.
func answerReceipts(asks []reloadAsk) {
	for _, a := range asks {
		if a.receipt != nil {
			select {
			case a.receipt <- Receipt{}:
			default:
			}
		}
	}
}

// ControlReloadWait asks for a reload like ControlReload, hands its plan
// to plan as soon as it is known, then waits until the generations the
// reload retired are gone and returns their receipt.
func ControlReloadWait(path string, plan func(string)) (Receipt, error) {
	return controlApplyWait(path, "reload --wait", plan)
}

// ControlRollbackWait is ControlReloadWait for a rollback.
func ControlRollbackWait(path string, plan func(string)) (Receipt, error) {
	return controlApplyWait(path, "rollback --wait", plan)
}

func controlApplyWait(path, cmd string, plan func(string)) (Receipt, error) {
	conn, dec, err := dialControl(path, cmd)
	if err != nil {
		return Receipt{}, err
	}
	defer conn.Close()
	r, err := nextReply(dec)
	if err != nil {
		return Receipt{}, err
	}
	text, err := planText(r)
	if err != nil {
		return Receipt{}, err
	}
	plan(text)
	rr, err := nextReply(dec)
	if err != nil {
		return Receipt{}, err
	}
	if rr.Receipt == nil {
		return Receipt{}, fmt.Errorf("control socket: the answer has no receipt")
	}
	return *rr.Receipt, nil
}
