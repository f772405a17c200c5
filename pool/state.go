package pool

// State is a worker's place in its lifecycle. Transitions only go forward:
// Starting → Ready → Draining → Exited (Starting → Exited on a boot failure,
// Starting → Draining when a reload or a stop overtakes it).
type State int

const (
	// Starting: spawned, not yet ready. It gets no connections from the
	// master's point of view (it may accept once it listens, but readiness
	// gates what the master does next).
	Starting State = iota
	// Ready: reported READY=1 (or, for exec with ready = "started", runs).
	Ready
	// Draining: told to stop; finishing in-flight requests.
	Draining
	// Exited: reaped.
	Exited
)

func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	case Exited:
		return "exited"
	}
	return "unknown"
}
