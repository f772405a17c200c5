package pool

import (
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// Hurry ends a draining pool's drain early, because its listener has more
// draining generations than max_draining_generations allows: a built-in
// worker closes its idle connections at once and the rest after grace
// (wire.Command.HurryMS), and is killed drainReportGrace after that if it
// is still running; an exec or app worker, which hfork cannot ask, is
// killed after grace. Hurrying a pool twice does nothing more.
func (p *Pool) Hurry(grace time.Duration, reason string) {
	if p.hurried {
		return
	}
	p.hurried = true
	now := p.cfg.OS.Now()
	exec := p.cfg.Listener.Class == hclconfig.ClassExec || p.cfg.Listener.App != ""
	for _, w := range p.workers {
		if w.State != Draining {
			continue
		}
		deadline := now.Add(grace)
		if !exec {
			p.send(w, wire.Command{HurryMS: max(grace.Milliseconds(), 1)})
			deadline = deadline.Add(drainReportGrace)
		}
		if deadline.Before(w.deadline) {
			w.deadline = deadline
		}
		p.log.Info("worker drain hurried", "pid", w.Pid, "reason", reason, "grace", grace.String())
	}
}

// Hurried reports whether Hurry was called.
func (p *Pool) Hurried() bool { return p.hurried }
