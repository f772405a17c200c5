package pool

import "time"

// Restart replaces the pool's ready workers one at a time, each by the
// max_requests path: a replacement starts, and the old worker drains only
// once it is ready, so the pool never serves with fewer than its workers.
// It returns how many workers will be replaced. A worker still starting
// already runs the code on disk and is left alone.
func (p *Pool) Restart() int {
	p.rolling = p.rolling[:0]
	for _, w := range p.workers {
		if w.State == Ready && !w.recycle {
			p.rolling = append(p.rolling, w.Pid)
		}
	}
	n := len(p.rolling)
	p.rollNext(time.Now())
	return n
}

// rollNext marks the next worker of a restart for replacement, unless one
// is still waiting for its replacement.
func (p *Pool) rollNext(now time.Time) {
	for _, w := range p.workers {
		if w.recycle && w.State == Ready {
			return
		}
	}
	for len(p.rolling) > 0 {
		pid := p.rolling[0]
		p.rolling = p.rolling[1:]
		w := p.find(pid)
		if w == nil || w.State != Ready || w.recycle {
			continue
		}
		w.recycle = true
		w.recycleWhy = "restart; replacement ready"
		p.log.Info("worker restarting; starting its replacement", "pid", w.Pid, "left", len(p.rolling))
		p.fill(now)
		return
	}
}
