package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// target is one configured upstream.
type target struct {
	raw    string
	scheme string // "http", "https" or "unix"
	path   string // unix: the socket's path
	host   string // http(s): the hostname or IP, without brackets
	port   int
	hostHd string // the Host header
	ip     net.IP // nil: a hostname, resolved
	// members are the target's addresses now (under Group.mu).
	members []*Member
}

// Group is one proxy route's upstreams.
type Group struct {
	cfg     hclconfig.Proxy
	log     *slog.Logger
	targets []*target
	members atomic.Pointer[[]*Member] // every target's, in config order
	rr      atomic.Uint64
	// Plain says every upstream is plain HTTP or a unix socket: the event
	// loop can speak to all of them.
	Plain bool

	mu      sync.Mutex // members of targets, when resolved again
	now     func() time.Time
	lookup  func(ctx context.Context, host string) ([]net.IP, error)
	started bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

// ErrNoUpstream is a proxy's failure when no upstream is healthy.
var ErrNoUpstream = errors.New("no healthy upstream")

// New makes the group for cfg. Hostnames are resolved once here (a name
// that does not resolve yet only logs); Start keeps them fresh.
func New(cfg hclconfig.Proxy, log *slog.Logger) (*Group, error) {
	if len(cfg.Upstream) == 0 {
		return nil, errors.New("proxy: no upstream")
	}
	if log == nil {
		log = slog.Default()
	}
	// A zero duration is a Proxy not made by the config decoder: its
	// defaults.
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.ConnectTimeout, 5 * time.Second}, {&cfg.ReadTimeout, 60 * time.Second},
		{&cfg.FailTimeout, 10 * time.Second}, {&cfg.ResolveInterval, 30 * time.Second}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	g := &Group{cfg: cfg, log: log, Plain: true, now: time.Now, stop: make(chan struct{}), lookup: lookupIP}
	for _, s := range cfg.Upstream {
		t, err := parseTarget(s)
		if err != nil {
			return nil, err
		}
		if t.scheme == "https" {
			g.Plain = false
		}
		switch {
		case t.scheme == "unix":
			t.members = []*Member{newUnixMember(t.path, s)}
		case t.ip != nil:
			t.members = []*Member{newTCPMember(t.ip, t.port, t.hostHd, t.hostHd)}
		}
		g.targets = append(g.targets, t)
	}
	g.publish()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout)
	defer cancel()
	g.resolve(ctx)
	return g, nil
}

func parseTarget(s string) (*target, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return nil, fmt.Errorf("proxy: upstream %q: no socket path", s)
		}
		return &target{raw: s, scheme: "unix", path: path}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy: upstream %q: want http://, https:// or unix: and a host", s)
	}
	t := &target{raw: s, scheme: u.Scheme, host: u.Hostname(), hostHd: u.Host, port: 80}
	if u.Scheme == "https" {
		t.port = 443
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("proxy: upstream %q: bad port", s)
		}
		t.port = n
	}
	if !strings.Contains(t.host, "%") {
		t.ip = net.ParseIP(t.host)
	}
	return t, nil
}

// publish makes the targets' members the ones Pick sees.
func (g *Group) publish() {
	var all []*Member
	for _, t := range g.targets {
		all = append(all, t.members...)
	}
	g.members.Store(&all)
}

// Members are the group's addresses now.
func (g *Group) Members() []*Member { return *g.members.Load() }

// Retries is how many other upstreams a failed request may try.
func (g *Group) Retries() int { return g.cfg.Retries }

// ConnectTimeout and ReadTimeout are the proxy's timeouts.
func (g *Group) ConnectTimeout() time.Duration { return g.cfg.ConnectTimeout }

// ReadTimeout bounds the wait for an answer's head and between two reads
// of its body.
func (g *Group) ReadTimeout() time.Duration { return g.cfg.ReadTimeout }

// Pick chooses a healthy member for a request from client (an IP, for
// ip_hash; "" when there is none) that has not tried one of tried yet. It
// returns nil when there is none.
func (g *Group) Pick(client string, tried []*Member) *Member {
	ms := *g.members.Load()
	n := len(ms)
	if n == 0 {
		return nil
	}
	now := g.now().UnixNano()
	ok := func(m *Member) bool { return !slices.Contains(tried, m) && g.healthy(m, now) }
	var start int
	switch g.cfg.Policy {
	case hclconfig.PolicyFirst:
		start = 0
	case hclconfig.PolicyIPHash:
		h := fnv.New32a()
		h.Write([]byte(client))
		start = int(h.Sum32() % uint32(n))
	case hclconfig.PolicyLeastConn:
		// The fewest requests in flight; among equals, round robin, so
		// an idle group still spreads its load.
		off := int(g.rr.Add(1)-1) % n
		var best *Member
		for i := range n {
			m := ms[(off+i)%n]
			if ok(m) && (best == nil || m.Active() < best.Active()) {
				best = m
			}
		}
		return best
	default:
		start = int(g.rr.Add(1)-1) % n
	}
	for i := range n {
		if m := ms[(start+i)%n]; ok(m) {
			return m
		}
	}
	return nil
}

// Start begins the group's probes and resolution, if it has any.
func (g *Group) Start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return
	}
	g.started = true
	if g.cfg.HealthCheck.Interval > 0 {
		g.wg.Go(g.probeLoop)
	}
	if slices.ContainsFunc(g.targets, func(t *target) bool { return t.scheme != "unix" && t.ip == nil }) {
		g.wg.Go(g.resolveLoop)
	}
}

// Close ends the probes and resolution and waits for them.
func (g *Group) Close() {
	g.mu.Lock()
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.mu.Unlock()
	g.wg.Wait()
}
