package engine

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool"
)

// Preview is what `hfork -s plan -f FILE` prints: what the running master
// would do with FILE, applying nothing.
type Preview struct {
	// Diagnostics, when not empty, is why FILE would fail to load; then
	// there is no plan.
	Diagnostics string `json:"diagnostics,omitempty"`
	// Plan is the plan lines a reload would log ("" when nothing changes).
	Plan string `json:"plan"`
	// Drains are the generations a reload would drain, with what they hold.
	Drains []DrainPreview `json:"drains"`
}

// DrainPreview is one generation a reload would drain and the connections
// its workers hold now (from their last heartbeat).
type DrainPreview struct {
	Listener string `json:"listener"`
	Gen      int    `json:"gen"`
	Action   string `json:"action"`
	Open     int    `json:"open_connections"`
	Idle     int    `json:"idle_connections"`
	// Upgraded connections (WebSockets) last until graceful_timeout or
	// until their client leaves.
	Upgraded int `json:"upgraded_connections"`
	Inflight int `json:"inflight"`
	// Oldest is the oldest request in flight ("GET /big.iso") and its
	// age: a long download shows here.
	Oldest   string `json:"oldest_request,omitempty"`
	OldestMS int64  `json:"oldest_request_ms,omitempty"`
	// GracefulTimeoutMS bounds how long the drain may take.
	GracefulTimeoutMS int64 `json:"graceful_timeout_ms"`
	// Named are the connections the workers named (see
	// pool.WorkerInfo.Named), each prefixed with "pid PID ".
	Named []string `json:"named_connections"`
}

// planAsk asks the loop what it would do with a config file.
type planAsk struct {
	path  string
	reply chan<- Preview
}

// preview parses path and plans against the running config; it reads a
// file and parses it in the loop, as a reload does, and changes nothing.
func (m *Master) preview(path string) Preview {
	src, err := os.ReadFile(path)
	if err != nil {
		return Preview{Diagnostics: err.Error()}
	}
	cfg, files, diags := hclconfig.Parse(path, src)
	if diags.HasErrors() {
		return Preview{Diagnostics: diagnosticsText(files, diags)}
	}
	// As `hfork -s reload` would: it restarts app and exec listeners.
	plan := Plan(m.cfg, cfg, PlanOptions{RestartCode: true})
	pv := Preview{Plan: plan.String(), Drains: []DrainPreview{}}
	if plan.Empty() {
		pv.Plan = ""
	}
	now := time.Now()
	for _, ch := range plan.Listeners {
		switch ch.Action {
		case Replace, Rebind, Stop:
		default:
			continue
		}
		p := m.pools[ch.Listener]
		if p == nil {
			continue
		}
		pv.Drains = append(pv.Drains, drainPreview(p.Snapshot(now), ch))
	}
	return pv
}

func drainPreview(s pool.Snapshot, ch Change) DrainPreview {
	d := DrainPreview{Listener: s.Listener, Gen: s.Gen, Action: ch.Action.String(),
		GracefulTimeoutMS: ch.Old.GracefulTimeout.Milliseconds(), Named: []string{}}
	for _, w := range s.Workers {
		for _, n := range w.Named {
			d.Named = append(d.Named, "pid "+strconv.Itoa(w.Pid)+" "+n)
		}
		d.Open += w.Open
		d.Idle += w.Idle
		d.Upgraded += w.Streams
		d.Inflight += w.Inflight
		if w.OldestReq != "" && w.Oldest.Milliseconds() >= d.OldestMS {
			d.Oldest, d.OldestMS = w.OldestReq, w.Oldest.Milliseconds()
		}
	}
	return d
}

// WritePreview prints p for a terminal.
func WritePreview(out io.Writer, p Preview) {
	if p.Plan == "" {
		fmt.Fprintln(out, "plan: nothing would change")
	} else {
		fmt.Fprintf(out, "plan:\n%s\n", p.Plan)
	}
	for _, d := range p.Drains {
		fmt.Fprintf(out, "%s listener %q would drain gen %d (graceful_timeout %dms): %d open connections, %d idle, %d upgraded (WebSockets), %d requests in flight",
			d.Action, d.Listener, d.Gen, d.GracefulTimeoutMS, d.Open, d.Idle, d.Upgraded, d.Inflight)
		if d.Oldest != "" {
			fmt.Fprintf(out, ", the oldest %s for %dms", d.Oldest, d.OldestMS)
		}
		fmt.Fprintln(out)
		for _, n := range d.Named {
			fmt.Fprintf(out, "  %s\n", describeNamed(n))
		}
	}
}

// ControlPlan asks the master listening on control what it would do with
// the config file at path.
func ControlPlan(control, path string) (Preview, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Preview{}, fmt.Errorf("plan: %w", err)
	}
	conn, dec, err := dialControl(control, "plan "+abs)
	if err != nil {
		return Preview{}, err
	}
	defer conn.Close()
	r, err := nextReply(dec)
	if err != nil {
		return Preview{}, err
	}
	if r.Preview == nil {
		return Preview{}, fmt.Errorf("control socket: the answer has no plan preview")
	}
	return *r.Preview, nil
}

// describeNamed turns "pid P KIND AGE_MS METHOD PATH" into a line for a
// terminal: "pid P: upgraded 12.3s ago: GET /ws".
func describeNamed(n string) string {
	f := strings.SplitN(n, " ", 5)
	if len(f) < 5 {
		return n
	}
	ms, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return n
	}
	age := (time.Duration(ms) * time.Millisecond).Round(100 * time.Millisecond)
	what := "request in flight for " + age.String()
	if f[2] == "upgraded" {
		what = "upgraded " + age.String() + " ago"
	}
	return "pid " + f[1] + ": " + what + ": " + f[4]
}
