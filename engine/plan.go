package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// Action is what a reload does to one listener.
type Action int

const (
	// Keep: nothing a worker sees changed; its workers are not touched.
	Keep Action = iota
	// Start: a new listener.
	Start
	// Stop: the listener is gone; drain it, then close its sockets.
	Stop
	// Scale: only the number of workers changed.
	Scale
	// Replace: something a worker sees changed; new workers on the same
	// sockets, ready first, then the old ones drain.
	Replace
	// Rebind: the binds changed; open the new sockets first, replace, then
	// close the sockets nobody uses.
	Rebind
	// Swap: only what a running built-in worker can take in place changed
	// (routes, hosts, headers, error pages, compression, the access log,
	// max_body_bytes, redirect_https; see wire.SwapMask): the workers build
	// the new routes and switch between requests, no process is replaced.
	// A change of workers alongside is applied as Scale once they have.
	Swap
)

func (a Action) String() string {
	return [...]string{"keep", "start", "stop", "scale", "replace", "rebind", "swap"}[a]
}

// Change is the plan for one listener.
type Change struct {
	Listener string
	Action   Action
	Old, New hclconfig.Listener
	// Fields names what differs, for the log ("routes", "timeout", ...).
	Fields []string
}

// Changes is a whole reload's plan.
type Changes struct {
	Listeners []Change // new listeners in file order, then stopped ones
	Log       bool     // the log block changed
	Reload    bool     // the reload block changed
	Metrics   bool     // the metrics block changed
	Pidfile   bool
}

// PlanOptions are what a reload's trigger adds to the two configs.
type PlanOptions struct {
	// RestartCode replaces every listener that runs user code (app and
	// exec) even when its config did not change: a SIGHUP or `hfork -s
	// reload` after a deploy must serve the new code, as gunicorn's HUP
	// does. A file-watch reload leaves it false and replaces only what
	// changed.
	RestartCode bool
}

// restartField is the Fields entry of a listener replaced by RestartCode.
const restartField = "restart"

// RunsCode reports whether l's workers run user code, which a HUP restarts.
func RunsCode(l hclconfig.Listener) bool { return l.App != "" || l.Class == hclconfig.ClassExec }

// Plan decides what a reload from old to new does. It is a pure function:
// the master only executes what it returns.
func Plan(old, new hclconfig.Config, opts PlanOptions) Changes {
	var c Changes
	c.Log = old.Log != new.Log
	c.Reload = old.Reload != new.Reload
	c.Metrics = old.Metrics != new.Metrics
	c.Pidfile = old.Pidfile != new.Pidfile
	for _, nl := range new.Listeners {
		ol, ok := old.Listener(nl.Name)
		if !ok {
			c.Listeners = append(c.Listeners, Change{Listener: nl.Name, Action: Start, New: nl})
			continue
		}
		// The fingerprint decides what a worker sees; the fields only name
		// what differs, for the log.
		ch := Change{Listener: nl.Name, Old: ol, New: nl, Fields: diffFields(ol, nl)}
		same := ol.Fingerprint() == nl.Fingerprint()
		switch {
		case same && opts.RestartCode && RunsCode(nl):
			// Same binds, since the binds are in the fingerprint.
			ch.Action = Replace
			ch.Fields = append(ch.Fields, restartField)
		case same && ol.Workers == nl.Workers:
			ch.Action = Keep
		case same:
			ch.Action = Scale
		case canSwap(ol, nl):
			ch.Action = Swap
		case !sameBinds(ol.Bind, nl.Bind):
			ch.Action = Rebind
		default:
			ch.Action = Replace
		}
		c.Listeners = append(c.Listeners, ch)
	}
	for _, ol := range old.Listeners {
		if _, ok := new.Listener(ol.Name); !ok {
			c.Listeners = append(c.Listeners, Change{Listener: ol.Name, Action: Stop, Old: ol})
		}
	}
	return c
}

// canSwap reports whether a reload from ol to nl can be applied inside
// ol's running workers: built-in routes only (not exec, not a Python app),
// and nothing else differs than what a swap applies.
func canSwap(ol, nl hclconfig.Listener) bool {
	if RunsCode(ol) || RunsCode(nl) {
		return false
	}
	switch ol.Class {
	case hclconfig.ClassSync, hclconfig.ClassThread, hclconfig.ClassAsync:
	default:
		return false
	}
	return wire.SwapMask(ol).Fingerprint() == wire.SwapMask(nl).Fingerprint()
}

func sameBinds(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// diffFields names the top-level listener fields that differ, by their
// config names.
func diffFields(a, b hclconfig.Listener) []string {
	ma, mb := fieldMap(a), fieldMap(b)
	var out []string
	for k, va := range ma {
		if string(va) != string(mb[k]) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func fieldMap(l hclconfig.Listener) map[string]json.RawMessage {
	b, _ := json.Marshal(l)
	m := map[string]json.RawMessage{}
	json.Unmarshal(b, &m)
	return m
}

// Empty reports whether the plan changes nothing.
func (c Changes) Empty() bool {
	if c.Log || c.Reload || c.Metrics || c.Pidfile {
		return false
	}
	for _, ch := range c.Listeners {
		if ch.Action != Keep {
			return false
		}
	}
	return true
}

// String renders the plan as one readable block for the log and for
// `hfork -s reload`.
func (c Changes) String() string {
	var b strings.Builder
	for _, ch := range c.Listeners {
		fmt.Fprintf(&b, "  %-8s listener %q", ch.Action, ch.Listener)
		switch ch.Action {
		case Scale:
			fmt.Fprintf(&b, ": workers %d -> %d", ch.Old.Workers, ch.New.Workers)
		case Swap:
			fmt.Fprintf(&b, ": %s changed; in place", strings.Join(ch.Fields, ", "))
		case Replace, Rebind:
			if slices.Contains(ch.Fields, restartField) {
				fields := slices.DeleteFunc(slices.Clone(ch.Fields), func(s string) bool { return s == restartField })
				if len(fields) > 0 {
					fmt.Fprintf(&b, ": %s changed;", strings.Join(fields, ", "))
				} else {
					b.WriteString(":")
				}
				b.WriteString(" restarts its code")
				break
			}
			fmt.Fprintf(&b, ": %s changed", strings.Join(ch.Fields, ", "))
		}
		b.WriteByte('\n')
	}
	if c.Log {
		b.WriteString("  apply    log settings\n")
	}
	if c.Reload {
		b.WriteString("  apply    reload settings\n")
	}
	if c.Metrics {
		b.WriteString("  apply    metrics settings\n")
	}
	if c.Pidfile {
		b.WriteString("  move     pidfile\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}
