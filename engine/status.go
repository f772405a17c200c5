package engine

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hfork/hfork/pool"
)

// StatusVersion is the version of the Status schema. Fields are only ever
// added; a field that changes meaning gets a new name and a new version.
const StatusVersion = 1

// Status is what `hfork -s status --json` prints: the running master, each
// listener's serving generation and its workers, the generations still
// draining, and the last reload and upgrade.
type Status struct {
	Version     int                `json:"version"`
	Pid         int                `json:"pid"`
	HforkVer    string             `json:"hfork_version"`
	Started     time.Time          `json:"started"`
	Now         time.Time          `json:"now"`
	Listeners   []ListenerStatus   `json:"listeners"`
	Draining    []GenerationStatus `json:"draining"`
	LastReload  *Event             `json:"last_reload"`
	LastUpgrade *Event             `json:"last_upgrade"`
	// Config names the live config: file, hash of its source, when it was
	// applied, and the previous one (what -s rollback applies).
	Config *ConfigStatus `json:"config,omitempty"`
}

// ListenerStatus is one listener and its serving generation.
type ListenerStatus struct {
	Name     string         `json:"name"`
	Class    string         `json:"class"`
	Binds    []string       `json:"binds"`
	Gen      int            `json:"gen"`
	Target   int            `json:"workers_target"`
	Workers  []WorkerStatus `json:"workers"`
	Requests uint64         `json:"requests"`
	// Restarts counts serving workers that were replaced, across every
	// generation of the listener; LastExit is the last worker that ended.
	Restarts     uint64     `json:"restarts"`
	BootFailures uint64     `json:"boot_failures"`
	LastExit     *pool.Exit `json:"last_exit"`
}

// GenerationStatus is a generation that is draining.
type GenerationStatus struct {
	Listener string         `json:"listener"`
	Gen      int            `json:"gen"`
	Workers  []WorkerStatus `json:"workers"`
}

// WorkerStatus is one worker process.
type WorkerStatus struct {
	pool.WorkerInfo
	AgeSeconds float64 `json:"age_seconds"`
	// OldestMS is the age of its oldest request in flight, in milliseconds.
	OldestMS int64 `json:"oldest_request_ms"`
	// RSSBytes is its resident memory, from /proc (0 when unreadable).
	RSSBytes int64 `json:"rss_bytes"`
}

// status builds a Status from a view; it reads /proc, so it runs outside
// the master's loop.
func (v view) status() Status {
	s := Status{Version: StatusVersion, Pid: v.pid, HforkVer: v.version, Started: v.started, Now: v.now,
		Listeners: []ListenerStatus{}, Draining: []GenerationStatus{}, LastReload: v.lastReload, LastUpgrade: v.lastUpgrade,
		Config: v.config}
	for _, p := range v.current {
		ls := ListenerStatus{Name: p.Listener, Class: p.Class, Binds: p.Binds, Gen: p.Gen, Target: p.Target,
			Workers: workers(p, v.now), LastExit: p.LastExit}
		c := v.counters(p.Listener)
		ls.Requests = c.Requests()
		ls.Restarts = sum(v.restarts(p.Listener))
		ls.BootFailures = sum(v.bootFailures(p.Listener))
		if ls.LastExit == nil {
			for _, d := range v.draining {
				if d.Listener == p.Listener && d.LastExit != nil && (ls.LastExit == nil || d.LastExit.At.After(ls.LastExit.At)) {
					ls.LastExit = d.LastExit
				}
			}
		}
		s.Listeners = append(s.Listeners, ls)
	}
	for _, p := range v.draining {
		s.Draining = append(s.Draining, GenerationStatus{Listener: p.Listener, Gen: p.Gen, Workers: workers(p, v.now)})
	}
	return s
}

func workers(p pool.Snapshot, now time.Time) []WorkerStatus {
	out := []WorkerStatus{}
	for _, w := range p.Workers {
		out = append(out, WorkerStatus{WorkerInfo: w, AgeSeconds: now.Sub(w.Started).Seconds(),
			OldestMS: w.Oldest.Milliseconds(), RSSBytes: rss(w.Pid)})
	}
	return out
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// counters are a listener's counters over every generation: retired,
// draining, serving and staged.
func (v view) counters(listener string) pool.Counters {
	var c pool.Counters
	c.Add(v.gone[listener].counters)
	for _, set := range [][]pool.Snapshot{v.current, v.draining, v.staged} {
		for _, p := range set {
			if p.Listener == listener {
				c.Add(p.Counters)
			}
		}
	}
	return c
}

func (v view) restarts(listener string) map[string]uint64 {
	return v.gather(listener, func(p pool.Snapshot) map[string]uint64 { return p.Restarts }, v.gone[listener].restarts)
}

func (v view) bootFailures(listener string) map[string]uint64 {
	return v.gather(listener, func(p pool.Snapshot) map[string]uint64 { return p.BootFailures }, v.gone[listener].bootFailures)
}

func (v view) gather(listener string, of func(pool.Snapshot) map[string]uint64, gone map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, n := range gone {
		out[k] += n
	}
	for _, set := range [][]pool.Snapshot{v.current, v.draining, v.staged} {
		for _, p := range set {
			if p.Listener == listener {
				for k, n := range of(p) {
					out[k] += n
				}
			}
		}
	}
	return out
}

// pageSize is the unit of /proc/PID/statm.
var pageSize = int64(os.Getpagesize())

// rss is a process's resident set size in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * pageSize
}

// WriteStatus prints s for a terminal.
func WriteStatus(out io.Writer, s Status) {
	fmt.Fprintf(out, "hfork %s, master pid %d, up %s\n", s.HforkVer, s.Pid, s.Now.Sub(s.Started).Round(time.Second))
	if c := s.Config; c != nil {
		how := "loaded"
		if c.Rollback {
			how = "rolled back to"
		}
		fmt.Fprintf(out, "config %s %s, %s %s ago", c.File, c.Hash, how, s.Now.Sub(c.LoadedAt).Round(time.Second))
		if c.Previous != nil {
			fmt.Fprintf(out, "; previous %s (hfork -s rollback)", c.Previous.Hash)
		}
		fmt.Fprintln(out)
	}
	for _, l := range s.Listeners {
		fmt.Fprintf(out, "\nlistener %q  class %s  gen %d  bind %s\n", l.Name, l.Class, l.Gen, strings.Join(l.Binds, ", "))
		fmt.Fprintf(out, "  workers %d/%d  requests %d  restarts %d  boot failures %d\n",
			ready(l.Workers), l.Target, l.Requests, l.Restarts, l.BootFailures)
		if l.LastExit != nil {
			fmt.Fprintf(out, "  last exit: pid %d %s ago, %s", l.LastExit.Pid, s.Now.Sub(l.LastExit.At).Round(time.Second), l.LastExit.Status)
			if l.LastExit.Reason != "" {
				fmt.Fprintf(out, " (%s)", l.LastExit.Reason)
			}
			fmt.Fprintln(out)
		}
		writeWorkers(out, l.Workers)
	}
	if len(s.Draining) > 0 {
		fmt.Fprintln(out, "\ndraining:")
		for _, g := range s.Draining {
			fmt.Fprintf(out, "  listener %q gen %d\n", g.Listener, g.Gen)
			writeWorkers(out, g.Workers)
		}
	}
	writeEvent(out, "last reload", s.LastReload, s.Now)
	writeEvent(out, "last upgrade", s.LastUpgrade, s.Now)
}

func ready(ws []WorkerStatus) int {
	n := 0
	for _, w := range ws {
		if w.State == "ready" {
			n++
		}
	}
	return n
}

func writeWorkers(out io.Writer, ws []WorkerStatus) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PID\tSTATE\tAGE\tREQUESTS\tINFLIGHT\tCONNS\tRSS")
	for _, w := range ws {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%d\t%d\t%s\n", w.Pid, w.State,
			(time.Duration(w.AgeSeconds) * time.Second).Round(time.Second), w.Requests, w.Inflight, w.Open, mib(w.RSSBytes))
	}
	tw.Flush()
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + "M" }

func writeEvent(out io.Writer, what string, e *Event, now time.Time) {
	if e == nil {
		fmt.Fprintf(out, "\n%s: none\n", what)
		return
	}
	fmt.Fprintf(out, "\n%s: %s ago, took %dms, %s", what, now.Sub(e.At).Round(time.Second), e.TookMS, e.Result)
	if e.Reason != "" {
		fmt.Fprintf(out, " (%s)", e.Reason)
	}
	fmt.Fprintln(out)
	if e.Error != "" {
		fmt.Fprintf(out, "  %s\n", strings.ReplaceAll(strings.TrimRight(e.Error, "\n"), "\n", "\n  "))
	}
	if e.Plan != "" {
		fmt.Fprintln(out, e.Plan)
	}
}

// ControlStatus asks the master listening on path for its status.
func ControlStatus(path string) (Status, error) {
	conn, dec, err := dialControl(path, "status")
	if err != nil {
		return Status{}, err
	}
	defer conn.Close()
	r, err := nextReply(dec)
	if err != nil {
		return Status{}, err
	}
	if r.Status == nil {
		return Status{}, fmt.Errorf("control socket: the answer has no status")
	}
	return *r.Status, nil
}
