package upstream

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// healthy reports whether m may get requests at now (unix nanos). A
// passive mark whose fail_timeout has passed is lifted here, and logged
// once.
func (g *Group) healthy(m *Member, now int64) bool {
	if m.checkDown.Load() {
		return false
	}
	if now < m.downUntil.Load() {
		return false
	}
	if m.marked.Load() && m.marked.CompareAndSwap(true, false) && !m.checkDown.Load() {
		g.log.Info("upstream healthy", "upstream", m.Name, "reason", "fail_timeout passed")
	}
	return true
}

// Healthy reports whether m may get requests now.
func (g *Group) Healthy(m *Member) bool { return g.healthy(m, g.now().UnixNano()) }

// Failed counts a failure of m (refused, reset, closed before an answer,
// timed out): max_fails of them within fail_timeout keep it out for
// fail_timeout. As in nginx, the only upstream of a group is never
// marked: there is nowhere else to send its requests.
func (g *Group) Failed(m *Member, why string) {
	if g.cfg.MaxFails == 0 || len(g.Members()) < 2 {
		return
	}
	now := g.now().UnixNano()
	window := int64(g.cfg.FailTimeout)
	m.mu.Lock()
	if now-m.failStart >= window {
		m.fails, m.failStart = 0, now
	}
	m.fails++
	down := m.fails >= g.cfg.MaxFails
	if down {
		m.fails = 0
		m.downUntil.Store(now + window)
	}
	m.mu.Unlock()
	if down && !m.marked.Swap(true) && !m.checkDown.Load() {
		g.log.Warn("upstream unhealthy", "upstream", m.Name, "reason", why,
			"max_fails", g.cfg.MaxFails, "for", g.cfg.FailTimeout.String())
	}
}

// passiveDown reports whether m's passive mark keeps it out now.
func (g *Group) passiveDown(m *Member) bool {
	return g.now().UnixNano() < m.downUntil.Load()
}

// probeLoop runs the health_check: every interval, one probe per member,
// all at once, so a hung one delays none of the others.
func (g *Group) probeLoop() {
	hc := g.cfg.HealthCheck
	t := time.NewTicker(hc.Interval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, m := range g.Members() {
			wg.Go(func() { g.probe(m) })
		}
		wg.Wait()
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
	}
}

// probe asks m for the health_check path and marks it by the answer.
func (g *Group) probe(m *Member) {
	hc := g.cfg.HealthCheck
	ctx, cancel := context.WithTimeout(context.Background(), hc.Timeout)
	defer cancel()
	go func() {
		select {
		case <-g.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	why := ""
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, m.Network, m.Addr)
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.Host+hc.Path, nil)
	if err == nil {
		req.Host = m.Host
		req.Header.Set("User-Agent", "hfork-health-check")
		var res *http.Response
		if res, err = tr.RoundTrip(req); err == nil {
			res.Body.Close()
			if !statusOK(hc.Status, res.StatusCode) {
				why = "status " + res.Status
			}
		}
	}
	if err != nil {
		why = err.Error()
	}
	select {
	case <-g.stop:
		return // a probe cut short by Close says nothing of the upstream
	default:
	}
	if why != "" {
		if !m.checkDown.Swap(true) && !g.passiveDown(m) {
			g.log.Warn("upstream unhealthy", "upstream", m.Name, "reason", "health check: "+why)
		}
		return
	}
	// A passed probe is proof enough: it lifts a passive mark too.
	wasDown := m.checkDown.Swap(false)
	if m.marked.Swap(false) {
		wasDown = wasDown || g.passiveDown(m)
		m.downUntil.Store(0)
	}
	if wasDown {
		g.log.Info("upstream healthy", "upstream", m.Name, "reason", "health check passed")
	}
}

func statusOK(want []int, code int) bool {
	if len(want) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(want, code)
}
