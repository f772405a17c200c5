package engine

import (
	"time"

	"github.com/hfork/hfork/pool"
)

// hurryGrace is how long the oldest draining generation's active
// connections get once a reload must close it to stay within
// max_draining_generations (its idle ones close at once).
const hurryGrace = time.Second

// roomToDrain reports whether the reload in flight may commit without any
// listener holding more than max_draining_generations draining
// generations. When one would, it hurries the oldest of that listener's
// draining generations (pool.Hurry) and the reload waits, its new workers
// ready and the old ones serving, until they are gone.
func (m *Master) roomToDrain(op *reloadOp) bool {
	limit := max(op.cfg.Reload.MaxDrainingGenerations, 1)
	room := true
	for _, ch := range op.plan.Listeners {
		switch ch.Action {
		case Replace, Rebind, Stop:
		default:
			continue
		}
		var draining []*pool.Pool // oldest first
		for _, p := range m.retiring {
			if p.Listener().Name == ch.Listener && !p.Done() {
				draining = append(draining, p)
			}
		}
		over := len(draining) + 1 - limit
		if over <= 0 {
			continue
		}
		room = false
		for _, p := range draining[:over] {
			if p.Hurried() {
				continue
			}
			m.log.Info("reload waits for the oldest draining generation; closing it first",
				"listener", ch.Listener, "gen", p.Gen(), "draining", len(draining),
				"max_draining_generations", limit)
			p.Hurry(min(hurryGrace, p.Listener().GracefulTimeout), "over max_draining_generations")
		}
	}
	return room
}

// logDraining says, for each generation a reload just retired, how many
// of its listener's generations drain now: the number
// max_draining_generations bounds.
func (m *Master) logDraining(retired []*pool.Pool) {
	for _, r := range retired {
		n := 0
		for _, p := range m.retiring {
			if p.Listener().Name == r.Listener().Name && !p.Done() {
				n++
			}
		}
		m.log.Info("generation draining", "listener", r.Listener().Name, "gen", r.Gen(), "draining", n)
	}
}
