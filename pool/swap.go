package pool

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// A swap applies a listener config inside the running built-in workers
// (wire.Command.Swap): no process is replaced. The pool sends the config to
// every worker that is starting or ready, waits until each has answered
// (wire.KeySwap), and fails the swap as soon as one refuses or when
// swapAnswerWait passes without every answer. Until the engine ends the
// swap, the pool's Spec is the new config, so a worker started meanwhile
// boots with it. EndSwap(false) sends the old config back to every worker
// that may run the new one.

// swapAnswerWait bounds the wait for every worker's answer: a worker
// builds its table in a few milliseconds; one that is silent this long is
// stuck, and the reload must not wait on it.
const swapAnswerWait = 3 * time.Second

// ErrSwapFailed is wrapped by a failed swap's error.
var ErrSwapFailed = errors.New("swap failed")

// swapIDs numbers swaps across every pool of the master.
var swapIDs atomic.Uint64

// swapOp is the swap in flight, or the rollback of one.
type swapOp struct {
	id       uint64
	old, new hclconfig.Listener
	sent     time.Time
	waiting  map[*Worker]bool
	switched int
	err      error
	took     time.Duration // set once every worker switched
	rollback bool
}

// SwapResult is a swap's outcome once it is known.
type SwapResult struct {
	// Workers is how many workers switched.
	Workers int
	// Took is from the request to the last worker's answer.
	Took time.Duration
	Err  error
}

// Swap asks every live worker to apply l in place; Swapped says when they
// all have. Only the routes and what else wire.SwapMask masks may differ
// from the pool's config.
func (p *Pool) Swap(l hclconfig.Listener) {
	now := p.cfg.OS.Now()
	op := p.startSwap(p.cfg.Listener, l, now, nil)
	p.swap = op
	p.log.Info("swapping routes in place", "swap", op.id, "workers", len(op.waiting))
	p.checkSwap(now)
}

// startSwap sends to to every worker that is starting or ready, and makes
// it the pool's Spec. A rollback (undo: the swap it undoes) skips the
// workers that run to already and will not switch away from it: those
// that did not confirm the swap undone and no longer wait to.
func (p *Pool) startSwap(from, to hclconfig.Listener, now time.Time, undo *swapOp) *swapOp {
	op := &swapOp{id: swapIDs.Add(1), old: from, new: to, sent: now, waiting: map[*Worker]bool{}, rollback: undo != nil}
	p.cfg.Listener = to
	fp := to.Fingerprint()
	for _, w := range p.workers {
		if w.exit != nil || w.control == nil || (w.State != Starting && w.State != Ready) {
			continue
		}
		if undo != nil && w.spec.Fingerprint() == fp && !undo.waiting[w] {
			continue
		}
		op.waiting[w] = true
		p.send(w, wire.Command{Swap: &to, SwapID: op.id})
	}
	return op
}

// Swapped is the swap's result once every worker answered, one refused or
// the wait ran out; false while it is still in flight or when there is
// none.
func (p *Pool) Swapped() (SwapResult, bool) {
	op := p.swap
	if op == nil || (op.err == nil && op.took == 0) {
		return SwapResult{}, false
	}
	return SwapResult{Workers: op.switched, Took: op.took, Err: op.err}, true
}

// EndSwap ends the swap the engine started: kept, the new config stays;
// not kept (the swap or another part of the reload failed), the old
// config is sent back to every worker that may run the new one.
func (p *Pool) EndSwap(keep bool) {
	op := p.swap
	if op == nil {
		return
	}
	p.swap = nil
	if keep {
		return
	}
	now := p.cfg.OS.Now()
	back := p.startSwap(op.new, op.old, now, op)
	p.log.Warn("swap rolled back; sending the old routes back", "swap", op.id, "rollback", back.id, "workers", len(back.waiting))
	if len(back.waiting) > 0 {
		p.unswap = back
	}
}

// swapAnswer takes a worker's wire.KeySwap answer.
func (p *Pool) swapAnswer(w *Worker, r wire.SwapReply, now time.Time) {
	for _, op := range []*swapOp{p.swap, p.unswap} {
		if op == nil || op.id != r.ID || !op.waiting[w] {
			continue
		}
		delete(op.waiting, w)
		switch {
		case r.Refused == "":
			w.spec, w.routes = op.new, routeKeys(op.new)
			op.switched++
		case op.rollback:
			// It cannot go back to the config the pool runs: a new worker
			// with the old Spec replaces it.
			p.log.Error("worker refused to swap back; replacing it", "pid", w.Pid, "err", r.Refused)
			w.recycle, w.recycleWhy = true, "refused to swap back: "+r.Refused
			p.fill(now)
		case op.err == nil:
			op.err = fmt.Errorf("listener %s: %w: worker %d refused: %s", p.cfg.Listener.Name, ErrSwapFailed, w.Pid, r.Refused)
		}
	}
	p.checkSwap(now)
}

// checkSwap notices workers gone and the wait running out, and logs the
// outcome once.
func (p *Pool) checkSwap(now time.Time) {
	if u := p.unswap; u != nil {
		p.forgetGone(u)
		if len(u.waiting) == 0 {
			p.log.Info("swap rollback complete", "swap", u.id, "workers", u.switched)
			p.unswap = nil
		}
	}
	op := p.swap
	if op == nil || op.err != nil || op.took != 0 {
		return
	}
	p.forgetGone(op)
	switch {
	case len(op.waiting) == 0:
		op.took = max(now.Sub(op.sent), time.Nanosecond)
		p.log.Info("swap complete", "swap", op.id, "workers", op.switched, "us", op.took.Microseconds())
	case now.Sub(op.sent) > swapAnswerWait:
		var pids []int
		for w := range op.waiting {
			pids = append(pids, w.Pid)
		}
		slices.Sort(pids)
		op.err = fmt.Errorf("listener %s: %w: workers %v did not answer within %s", p.cfg.Listener.Name, ErrSwapFailed, pids, swapAnswerWait)
	}
}

// forgetGone stops waiting for workers that exited or drain: their
// replacements boot with the pool's Spec.
func (p *Pool) forgetGone(op *swapOp) {
	for w := range op.waiting {
		if w.exit != nil || w.State == Exited || w.State == Draining || !slices.Contains(p.workers, w) {
			delete(op.waiting, w)
		}
	}
}

// routeKeys name the groups of wire.KeyCodes a worker of l sends: the
// listener's routes in config order, its no route, then each host's
// routes and no route, hosts in file order.
func routeKeys(l hclconfig.Listener) []Route {
	if l.App != "" {
		// hfork's Python runner counts the app as one route.
		return []Route{{Prefix: "/"}, {}}
	}
	out := make([]Route, 0, len(l.Routes)+1)
	for _, r := range l.Routes {
		out = append(out, Route{Prefix: r.Prefix})
	}
	out = append(out, Route{})
	for _, h := range l.Hosts {
		for _, r := range h.Routes {
			out = append(out, Route{Host: h.Label, Prefix: r.Prefix})
		}
		out = append(out, Route{Host: h.Label})
	}
	return out
}
