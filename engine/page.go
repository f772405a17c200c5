package engine

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool"
)

// The status page (a status route) runs in workers, which know only their
// own process, so the master pushes them its view once a second down their
// control pipes: the status, as `hfork -s status --json` prints it, and
// each listener's requests per second over the last minute. The loop
// takes the view; another goroutine renders it (reading /proc) and hands
// the bytes back to the loop, which alone may talk to workers.

// pageEvery is how often the master samples request counts and pushes the
// status page's data.
const pageEvery = time.Second

// rateWindow is how many samples the chart shows: one minute.
const rateWindow = 60

// PageData is the status page's JSON: Status plus request rates.
type PageData struct {
	Status
	Rates []ListenerRate `json:"rates"`
}

// ListenerRate is a listener's requests per second, one value per second,
// oldest first, over the last minute (fewer while the master is young).
type ListenerRate struct {
	Listener  string    `json:"listener"`
	PerSecond []float64 `json:"per_second"`
}

// rates keeps the last samples of each listener's request total.
type rates struct {
	at     []time.Time
	totals map[string][]uint64
}

// sample records the totals of v; a listener new since the last sample
// starts its series there.
func (r *rates) sample(v view) {
	if r.totals == nil {
		r.totals = map[string][]uint64{}
	}
	r.at = append(r.at, v.now)
	sampled := map[string]bool{}
	for _, name := range v.listeners() {
		r.totals[name] = append(r.totals[name], v.counters(name).Requests())
		sampled[name] = true
	}
	for name, t := range r.totals {
		if !sampled[name] {
			// A listener the view no longer knows keeps its last total.
			r.totals[name] = append(t, t[len(t)-1])
		}
	}
	if len(r.at) > rateWindow+1 {
		drop := len(r.at) - rateWindow - 1
		r.at = r.at[drop:]
		for name, t := range r.totals {
			r.totals[name] = t[max(0, len(t)-len(r.at)):]
		}
	}
}

// perSecond is one listener's series of rates.
func (r *rates) perSecond(name string) []float64 {
	t := r.totals[name]
	at := r.at[len(r.at)-len(t):]
	out := []float64{}
	for i := 1; i < len(t); i++ {
		d := at[i].Sub(at[i-1]).Seconds()
		if d <= 0 || t[i] < t[i-1] {
			out = append(out, 0)
			continue
		}
		out = append(out, float64(t[i]-t[i-1])/d)
	}
	return out
}

// pagePush is rendered page data coming back to the loop.
type pagePush struct{ data []byte }

// hasStatusRoute reports whether any serving listener has a status route.
func (m *Master) hasStatusRoute() bool {
	return slices.ContainsFunc(m.cfg.Listeners, statusIn)
}

// statusIn reports whether l has a status route, of its own or in one of
// its host blocks.
func statusIn(l hclconfig.Listener) bool {
	isStatus := func(r hclconfig.Route) bool { return r.App == hclconfig.AppStatus }
	return slices.ContainsFunc(l.Routes, isStatus) ||
		slices.ContainsFunc(l.Hosts, func(h hclconfig.Host) bool { return slices.ContainsFunc(h.Routes, isStatus) })
}

// pageTick samples the request rates and, when a status route exists,
// renders the page data off the loop.
func (m *Master) pageTick(now time.Time) {
	if now.Sub(m.lastPage) < pageEvery {
		return
	}
	m.lastPage = now
	v := m.takeView()
	m.hist.rates.sample(v)
	if !m.hasStatusRoute() {
		return
	}
	d := PageData{Rates: []ListenerRate{}}
	for _, name := range v.listeners() {
		d.Rates = append(d.Rates, ListenerRate{Listener: name, PerSecond: m.hist.rates.perSecond(name)})
	}
	go func() {
		d.Status = v.status()
		b, err := json.Marshal(d)
		if err != nil {
			return
		}
		select {
		case m.events <- pagePush{data: b}:
		default: // the loop is swamped; the next second brings another
		}
	}()
}

// pushPage sends the page data to every worker that serves a status route.
func (m *Master) pushPage(b []byte) {
	for _, p := range m.allPools() {
		if hasStatus(p) {
			p.SendStatus(b)
		}
	}
}

func hasStatus(p *pool.Pool) bool { return statusIn(p.Listener()) }
