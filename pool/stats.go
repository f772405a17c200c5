package pool

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// DrainCounts is what draining workers did with the connections they held
// when their drain began.
type DrainCounts struct {
	// HandedOver: connections the drain let finish (answered with
	// "Connection: close", or closed by the client), so the client's next
	// request meets the new generation.
	HandedOver uint64 `json:"handed_over"`
	// Finished: requests answered while draining.
	Finished uint64 `json:"requests_finished"`
	// IdleClosed: idle keep-alive connections the drain closed.
	IdleClosed uint64 `json:"idle_closed"`
	// Cut: connections closed with whatever they carried: at
	// graceful_timeout those not moving, later those that stalled, at
	// shutdown_timeout what was left.
	Cut uint64 `json:"cut"`
	// Outlasted: transfers still moving at graceful_timeout that the
	// drain let finish (among HandedOver).
	Outlasted uint64 `json:"outlasted_graceful"`
	// CutAtShutdown: of Cut, those still open at shutdown_timeout.
	CutAtShutdown uint64 `json:"cut_at_shutdown"`
	// Bounded: connections closed early, idle ones at once and the rest
	// after a short grace, because their generation was over
	// max_draining_generations (among IdleClosed and Cut).
	Bounded uint64 `json:"closed_over_max_draining"`
}

// Add adds o to d.
func (d *DrainCounts) Add(o DrainCounts) {
	d.HandedOver += o.HandedOver
	d.Finished += o.Finished
	d.IdleClosed += o.IdleClosed
	d.Cut += o.Cut
	d.Outlasted += o.Outlasted
	d.CutAtShutdown += o.CutAtShutdown
	d.Bounded += o.Bounded
}

// Route names what a request is counted under: the label of the host
// block whose routes served it ("" for the listener's own routes) and the
// route's prefix ("" when no route of that host or listener matched).
type Route struct {
	Host   string
	Prefix string
}

// Counters are a listener's cumulative counters as its workers reported
// them on their heartbeats. A worker's counters only grow, and when it
// exits its last report joins its pool's total, so no sum of Counters ever
// goes backwards.
type Counters struct {
	// Codes counts answered requests by route and status class:
	// Codes[route][0] is 1xx, [4] is 5xx.
	Codes map[Route][5]uint64
	// Buckets counts requests by duration: Buckets[i] those no longer than
	// wire.DurationBuckets[i] and longer than the bucket before; the last
	// entry those longer than every bound.
	Buckets []uint64
	// DurationSum is the sum of the durations counted in Buckets.
	DurationSum time.Duration
	// Bytes is response bytes sent (bodies; heads are not counted).
	Bytes uint64
	Drain DrainCounts
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	if c.Codes == nil {
		c.Codes = map[Route][5]uint64{}
	}
	for r, v := range o.Codes {
		cur := c.Codes[r]
		for i := range v {
			cur[i] += v[i]
		}
		c.Codes[r] = cur
	}
	if len(c.Buckets) < len(o.Buckets) {
		c.Buckets = append(c.Buckets, make([]uint64, len(o.Buckets)-len(c.Buckets))...)
	}
	for i, v := range o.Buckets {
		c.Buckets[i] += v
	}
	c.DurationSum += o.DurationSum
	c.Bytes += o.Bytes
	c.Drain.Add(o.Drain)
}

// Requests is the number of requests counted in Codes.
func (c Counters) Requests() uint64 {
	var n uint64
	for _, v := range c.Codes {
		for _, x := range v {
			n += x
		}
	}
	return n
}

// workerStats is what a built-in worker's heartbeats said last.
type workerStats struct {
	codes              []uint64 // groups of five per route, in routeKeys order
	buckets            []uint64
	durSum             time.Duration
	bytes              uint64
	open, idle, stream int
	named              []string
	drained            DrainCounts
	reported           bool // drained came from the worker's own report
}

// parse takes the counters from a datagram's fields; a field that does not
// parse leaves the previous value, so a counter never drops to zero.
func (s *workerStats) parse(f map[string]string) {
	if v, ok := f[wire.KeyCodes]; ok {
		if n, ok := parseUints(v); ok {
			s.codes = n
		}
	}
	if v, ok := f[wire.KeyDuration]; ok {
		if n, ok := parseUints(v); ok && len(n) == len(wire.DurationBuckets)+2 {
			s.buckets = n[:len(n)-1]
			s.durSum = time.Duration(n[len(n)-1]) * time.Microsecond
		}
	}
	if v, ok := f[wire.KeyBytes]; ok {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			s.bytes = n
		}
	}
	if v, ok := f[wire.KeyConns]; ok {
		if n, ok := parseUints(v); ok && len(n) == 3 {
			s.open, s.idle, s.stream = int(n[0]), int(n[1]), int(n[2])
		}
	}
	if v, ok := f[wire.KeyNamed]; ok {
		s.named = nil
		if v != "" {
			s.named = strings.Split(v, "\t")
		}
	}
	if v, ok := f[wire.KeyDrained]; ok {
		// A worker of an older binary (before an upgrade) sends four.
		if n, ok := parseUints(v); ok && (len(n) == 4 || len(n) == 7) {
			s.drained = DrainCounts{HandedOver: n[0], Finished: n[1], IdleClosed: n[2], Cut: n[3]}
			if len(n) == 7 {
				s.drained.Outlasted, s.drained.CutAtShutdown, s.drained.Bounded = n[4], n[5], n[6]
			}
			s.reported = true
		}
	}
}

func parseUints(v string) ([]uint64, bool) {
	if v == "" {
		return nil, true
	}
	parts := strings.Split(v, ",")
	out := make([]uint64, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// counters turns s into Counters, naming the groups of five by routes (a
// group past them counts as the listener's no route).
func (s *workerStats) counters(routes []Route) Counters {
	c := Counters{Codes: map[Route][5]uint64{}, Buckets: slices.Clone(s.buckets), DurationSum: s.durSum,
		Bytes: s.bytes, Drain: s.drained}
	for g := 0; g*5+5 <= len(s.codes); g++ {
		var name Route
		if g < len(routes) {
			name = routes[g]
		}
		var v [5]uint64
		copy(v[:], s.codes[g*5:g*5+5])
		if v != [5]uint64{} {
			cur := c.Codes[name]
			for i := range v {
				cur[i] += v[i]
			}
			c.Codes[name] = cur
		}
	}
	return c
}

// WorkerInfo is one worker as `hfork -s status` shows it.
type WorkerInfo struct {
	Pid       int           `json:"pid"`
	Gen       int           `json:"gen"`
	State     string        `json:"state"`
	Started   time.Time     `json:"started"`
	Requests  int64         `json:"requests"`
	Inflight  int           `json:"inflight"`
	Oldest    time.Duration `json:"-"`
	OldestReq string        `json:"oldest_request,omitempty"`
	// Open, Idle and Streams are its connections: all, idle keep-alive
	// ones, and upgraded ones (WebSockets).
	Open    int `json:"open_connections"`
	Idle    int `json:"idle_connections"`
	Streams int `json:"upgraded_connections"`
	// Named are the oldest requests in flight and the upgraded connections,
	// at most eight: "request AGE_MS METHOD PATH" or "upgraded AGE_MS
	// METHOD PATH", as of the last heartbeat.
	Named []string `json:"named_connections"`
}

// Exit is how a worker ended.
type Exit struct {
	Pid    int       `json:"pid"`
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Reason string    `json:"reason,omitempty"`
}

// Snapshot is one pool as status and metrics see it. It shares nothing
// with the pool, so another goroutine may read it.
type Snapshot struct {
	Listener string
	Class    string
	Binds    []string
	Gen      int
	Target   int
	Staged   bool
	Workers  []WorkerInfo
	Counters Counters
	// Restarts counts workers replaced after they exited or were killed
	// while serving, by reason; BootFailures counts workers that never
	// became ready (or died at once), by reason.
	Restarts     map[string]uint64
	BootFailures map[string]uint64
	LastExit     *Exit
}

// poolStats is what a pool remembers of workers that are gone.
type poolStats struct {
	gone         Counters
	restarts     map[string]uint64
	bootFailures map[string]uint64
	lastExit     *Exit
}

func (s *poolStats) restart(reason string) {
	if s.restarts == nil {
		s.restarts = map[string]uint64{}
	}
	s.restarts[reason]++
}

func (s *poolStats) bootFailure(reason string) {
	if s.bootFailures == nil {
		s.bootFailures = map[string]uint64{}
	}
	s.bootFailures[reason]++
}

// exited folds a reaped worker's last report into the pool's totals.
func (p *Pool) exited(w *Worker, ev ExitEvent, now time.Time, prev State) {
	c := w.stats.counters(w.routes)
	if prev == Draining && strings.HasPrefix(w.killedFor, "stop deadline") && !w.stats.reported {
		// Killed before it could report its drain: whatever it still
		// held was cut.
		c.Drain.Cut += uint64(max(w.stats.open, 1))
		if p.hurried {
			c.Drain.Bounded += uint64(max(w.stats.open, 1))
		}
	}
	p.stats.gone.Add(c)
	p.stats.lastExit = &Exit{Pid: w.Pid, At: now, Status: DescribeStatus(ev.Status), Reason: w.killedFor}
	switch prev {
	case Starting:
		if strings.HasPrefix(w.killedFor, "not ready within") {
			p.stats.bootFailure("boot_timeout")
		} else {
			p.stats.bootFailure("exited")
		}
	case Ready:
		p.stats.restart(restartReason(w.killedFor))
		if now.Sub(w.readyAt) < stableAfter {
			p.stats.bootFailure("unstable")
		}
	}
}

// restartReason is a metric label for why a serving worker ended.
func restartReason(killedFor string) string {
	switch {
	case strings.HasPrefix(killedFor, "worker timeout"):
		return "timeout"
	case strings.HasPrefix(killedFor, "no heartbeat"):
		return "no_heartbeat"
	case strings.HasPrefix(killedFor, "watchdog"):
		return "watchdog"
	case killedFor != "":
		return "killed"
	}
	return "exited"
}

// Snapshot copies what status and metrics show of the pool.
func (p *Pool) Snapshot(now time.Time) Snapshot {
	l := p.cfg.Listener
	s := Snapshot{
		Listener: l.Name, Class: string(l.Class), Binds: slices.Clone(l.Bind), Gen: p.cfg.Gen,
		Target: p.target, Staged: p.cfg.Staged,
		Restarts: cloneMap(p.stats.restarts), BootFailures: cloneMap(p.stats.bootFailures),
	}
	if p.stats.lastExit != nil {
		e := *p.stats.lastExit
		s.LastExit = &e
	}
	s.Counters.Add(p.stats.gone)
	for _, w := range p.workers {
		s.Counters.Add(w.stats.counters(w.routes))
		s.Workers = append(s.Workers, WorkerInfo{
			Pid: w.Pid, Gen: w.Gen, State: w.State.String(), Started: w.Started, Requests: int64(w.load.Requests),
			Inflight: w.load.Inflight, Oldest: w.load.Oldest, OldestReq: w.load.OldestReq,
			Open: w.stats.open, Idle: w.stats.idle, Streams: w.stats.stream,
			Named: append([]string{}, w.stats.named...),
		})
	}
	return s
}

func cloneMap(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SendStatus hands the status page's data to every built-in worker.
func (p *Pool) SendStatus(b []byte) {
	if p.cfg.Listener.Class == hclconfig.ClassExec {
		return
	}
	for _, w := range p.workers {
		// Ready only: a starting worker has its Spec to read first.
		if w.State == Ready {
			p.send(w, wire.Command{Status: b})
		}
	}
}
