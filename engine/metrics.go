package engine

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/pool/wire"
)

// The metrics are served by the master itself, from a goroutine of its
// own on the metrics bind: no worker serves them, so a reload that
// replaces every worker never interrupts a scrape or resets a counter. A
// scrape asks the master's loop for a view (one message, answered from
// memory) and renders it with client_golang's exposition code; nothing is
// counted per request in the master.

// metricsAsk bounds how long a scrape waits for a busy loop.
const metricsAsk = 5 * time.Second

// metricsServer serves /metrics on one socket of the master's set.
type metricsServer struct {
	bind string
	srv  *http.Server
	done chan struct{}
}

// startMetrics serves the metrics on bind, a socket the set already
// prepared (it holds a reference until stopMetrics).
func (m *Master) startMetrics(bind string) error {
	if bind == "" {
		return nil
	}
	socks, err := m.sockets.Acquire([]string{bind})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// FileListener dups the fd: closing the server leaves the set's
	// socket open for a later generation or a new master.
	ln, err := net.FileListener(socks[0].File)
	if err != nil {
		m.sockets.Release([]string{bind})
		return fmt.Errorf("metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{ask: m.askView})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{m}}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "hfork metrics are at /metrics", http.StatusNotFound)
	})
	s := &metricsServer{bind: bind, done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server stopped", "bind", bind, "err", err)
		}
	}()
	m.metrics = s
	m.log.Info("serving metrics", "bind", bind)
	return nil
}

// stopMetrics closes the metrics server and drops its socket reference.
func (m *Master) stopMetrics() {
	s := m.metrics
	if s == nil {
		return
	}
	m.metrics = nil
	s.srv.Close()
	<-s.done
	m.sockets.Release([]string{s.bind})
}

// askView asks the loop for a view from another goroutine.
func (m *Master) askView() (view, bool) {
	reply := make(chan view, 1)
	select {
	case m.events <- viewAsk{reply: reply}:
	case <-time.After(metricsAsk):
		return view{}, false
	}
	select {
	case v := <-reply:
		return v, true
	case <-time.After(metricsAsk):
		return view{}, false
	}
}

type slogPrinter struct{ m *Master }

func (p slogPrinter) Println(v ...any) { p.m.log.Warn("metrics", "detail", fmt.Sprint(v...)) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("hfork_"+name, help, labels, nil)
}

// A request a host block served carries a host label as well; the
// listener's own routes keep the series they always had (to Prometheus, a
// label absent is a label empty, so {host=""} selects them).
const requestsHelp = "HTTP requests answered, by listener, host block (absent: the listener's own routes), route prefix (none: no route matched) and status class."

var (
	descRequests     = desc("http_requests_total", requestsHelp, "listener", "route", "status_class")
	descHostRequests = desc("http_requests_total", requestsHelp, "host", "listener", "route", "status_class")
)

var (
	descDuration = desc("http_request_duration_seconds", "Time from reading a request to its answer, by listener.", "listener")
	descBytes    = desc("http_response_body_bytes_total", "Response body bytes sent, by listener.", "listener")
	descRestarts = desc("worker_restarts_total", "Serving workers replaced, by listener and reason.", "listener", "reason")
	descBootFail = desc("worker_boot_failures_total", "Workers that failed to boot, by listener and reason.", "listener", "reason")
	descReloads  = desc("reloads_total", "Reloads by result (ok, unchanged, or the stage that failed: config, bind, boot, swap, shutdown).", "result")
	descUpgrades = desc("upgrades_total", "Binary upgrades by result.", "result")
	descDrainC   = desc("drain_connections_total", "Connections held by draining workers when their drain began, by what became of them: handed_over (let finish; the client's next request meets the new workers), idle_closed, or cut (not moving at graceful_timeout, stalled later, or open at shutdown_timeout).",
		"listener", "outcome")
	descDrainR   = desc("drain_requests_total", "Requests answered by draining workers.", "listener")
	descDrainE   = desc("drain_closed_early_total", "Connections of draining workers closed early (idle ones at once, the rest after a short grace) because their listener had more draining generations than max_draining_generations; they are counted in drain_connections_total too.", "listener")
	descDrainX   = desc("drain_outlasted_total", "Transfers still moving at graceful_timeout that draining workers let finish.", "listener")
	descOpen     = desc("open_connections", "Connections the workers hold, by listener.", "listener")
	descIdle     = desc("idle_connections", "Idle keep-alive connections the workers hold, by listener.", "listener")
	descUpgraded = desc("upgraded_connections", "Upgraded connections (WebSockets) the workers hold, by listener.", "listener")
	descWorkers  = desc("workers", "Worker processes by listener and state.", "listener", "state")
	descSwaps    = desc("swaps_total", "Reloads applied inside the running workers (plan action swap), by listener and result: ok, or failed (refused, unanswered, or rolled back with the rest of the reload).", "listener", "result")
	descSwapDur  = desc("swap_duration_seconds", "Time from the master's swap request to the last worker's confirmation, by listener.", "listener")
	descDraining = desc("draining_generations", "Generations of workers still draining, by listener.", "listener")
)

// collector renders a view as metrics; it is unchecked (no Describe), as
// its label values come and go with the config.
type collector struct {
	ask func() (view, bool)
}

func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	v, ok := c.ask()
	if !ok {
		ch <- prometheus.NewInvalidMetric(descReloads, errors.New("the master did not answer in time"))
		return
	}
	counter := func(d *prometheus.Desc, n uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
	}
	gauge := func(d *prometheus.Desc, n int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n), labels...)
	}
	for _, name := range v.listeners() {
		cs := v.counters(name)
		for _, route := range sortedRoutes(cs.Codes) {
			label := route.Prefix
			if label == "" {
				label = "none"
			}
			for i, n := range cs.Codes[route] {
				if route.Host == "" {
					counter(descRequests, n, name, label, fmt.Sprintf("%dxx", i+1))
				} else {
					counter(descHostRequests, n, route.Host, name, label, fmt.Sprintf("%dxx", i+1))
				}
			}
		}
		ch <- histogram(cs, name)
		counter(descBytes, cs.Bytes, name)
		for reason, n := range v.restarts(name) {
			counter(descRestarts, n, name, reason)
		}
		for reason, n := range v.bootFailures(name) {
			counter(descBootFail, n, name, reason)
		}
		counter(descDrainC, cs.Drain.HandedOver, name, "handed_over")
		counter(descDrainC, cs.Drain.IdleClosed, name, "idle_closed")
		counter(descDrainC, cs.Drain.Cut, name, "cut")
		counter(descDrainR, cs.Drain.Finished, name)
		counter(descDrainE, cs.Drain.Bounded, name)
		counter(descDrainX, cs.Drain.Outlasted, name)

		var open, idle, upgraded, draining int
		states := map[string]int{"starting": 0, "ready": 0, "draining": 0}
		for _, set := range [][]pool.Snapshot{v.current, v.draining, v.staged} {
			for _, p := range set {
				if p.Listener != name {
					continue
				}
				for _, w := range p.Workers {
					open, idle, upgraded = open+w.Open, idle+w.Idle, upgraded+w.Streams
					states[w.State]++
				}
			}
		}
		for _, p := range v.draining {
			if p.Listener == name {
				draining++
			}
		}
		gauge(descOpen, open, name)
		gauge(descIdle, idle, name)
		gauge(descUpgraded, upgraded, name)
		for st, n := range states {
			gauge(descWorkers, n, name, st)
		}
		gauge(descDraining, draining, name)
	}
	for _, name := range sortedKeys(v.swaps) {
		s := v.swaps[name]
		counter(descSwaps, s.ok, name, "ok")
		counter(descSwaps, s.failed, name, "failed")
		ch <- swapHistogram(s, name)
	}
	for _, r := range []string{"ok", "unchanged", "config", "bind", "boot", "swap", "shutdown"} {
		counter(descReloads, v.reloads[r], r)
	}
	for _, r := range []string{"ok", "failed"} {
		counter(descUpgrades, v.upgrades[r], r)
	}
}

// histogram is a listener's duration histogram; Prometheus buckets are
// cumulative, the workers' are not.
func histogram(cs pool.Counters, listener string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(wire.DurationBuckets))
	var cum uint64
	for i, b := range wire.DurationBuckets {
		if i < len(cs.Buckets) {
			cum += cs.Buckets[i]
		}
		buckets[b.Seconds()] = cum
	}
	count := cum
	if n := len(wire.DurationBuckets); len(cs.Buckets) > n {
		count += cs.Buckets[n]
	}
	return prometheus.MustNewConstHistogram(descDuration, count, cs.DurationSum.Seconds(), buckets, listener)
}

// swapHistogram is a listener's swap latency histogram.
func swapHistogram(s swapStats, listener string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(swapBuckets))
	var cum uint64
	for i, b := range swapBuckets {
		cum += s.buckets[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(descSwapDur, s.ok, s.sum.Seconds(), buckets, listener)
}

// listeners names every listener the view knows, gone ones included: their
// counters stay exported, so they never go backwards.
func (v view) listeners() []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, set := range [][]pool.Snapshot{v.current, v.draining, v.staged} {
		for _, p := range set {
			add(p.Listener)
		}
	}
	for _, n := range sortedKeys(v.gone) {
		add(n)
	}
	return out
}

// sortedRoutes orders routes by host, then prefix: the listener's own
// first.
func sortedRoutes[V any](m map[pool.Route]V) []pool.Route {
	out := make([]pool.Route, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].Prefix < out[j].Prefix
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
