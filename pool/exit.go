package pool

import (
	"slices"
	"time"
)

// lastWordsWait is how long an exit report waits for the worker's last
// output line: a child can be reaped before its pipe's reader has seen
// the line it printed just before it died (often the reason).
const lastWordsWait = 50 * time.Millisecond

// HandleExit accounts for a reaped worker; false if pid is not ours. A
// worker that was not draining is reported with its last output line: if
// its pipes are not drained yet, the report waits for them, up to
// lastWordsWait, in a later Tick. The caller is never kept waiting.
func (p *Pool) HandleExit(ev ExitEvent, now time.Time) bool {
	w := p.find(ev.Pid)
	if w == nil {
		return false
	}
	w.exit, w.exitAt, w.exitWas = &ev, now, w.State
	w.State = Exited
	p.cfg.OS.Release(w.Pid)
	w.closeControl()
	if w.exitWas == Draining || w.drained() {
		p.finishExit(w, now)
	}
	return true
}

// drained reports whether the worker's output pipes reached EOF.
func (w *Worker) drained() bool {
	return w.err.finished() && w.out.finished()
}

// finishExits reports the exits whose output drained or waited long enough.
func (p *Pool) finishExits(now time.Time) {
	for _, w := range slices.Clone(p.workers) {
		if w.exit != nil && (w.drained() || now.Sub(w.exitAt) >= lastWordsWait) {
			p.finishExit(w, now)
		}
	}
}

func (p *Pool) finishExit(w *Worker, now time.Time) {
	i := slices.Index(p.workers, w)
	if i < 0 {
		return
	}
	p.workers = slices.Delete(p.workers, i, i+1)
	ev, prev, at := *w.exit, w.exitWas, w.exitAt
	p.exited(w, ev, at, prev)
	attrs := []any{"pid", w.Pid, "state", Exited.String(), "was", prev.String(), "status", DescribeStatus(ev.Status)}
	if w.killedFor != "" {
		attrs = append(attrs, "reason", w.killedFor)
	}
	switch {
	case prev == Draining:
		p.log.Info("worker exited", attrs...)
	case prev == Starting:
		last := w.lastLine()
		attrs = append(attrs, "last_output", last)
		p.log.Error("worker exited before it was ready", attrs...)
		why := DescribeStatus(ev.Status)
		if w.killedFor != "" {
			why = w.killedFor
		}
		if last != "" {
			why += ": " + last
		}
		p.bootFailed(at, why)
	default:
		last := w.lastLine()
		attrs = append(attrs, "last_output", last)
		p.log.Error("worker exited unexpectedly; replacing it", attrs...)
		if at.Sub(w.readyAt) < stableAfter {
			why := "exited " + at.Sub(w.readyAt).Round(time.Millisecond).String() + " after it was ready: " + DescribeStatus(ev.Status)
			if last != "" {
				why += ": " + last
			}
			p.bootFailed(at, why)
		}
	}
	p.fill(now)
}

// lastLine is the last line the worker printed, for exit reports.
func (w *Worker) lastLine() string {
	last := w.err.lastLine()
	if last == "" && w.out != nil {
		last = w.out.lastLine()
	}
	return last
}
