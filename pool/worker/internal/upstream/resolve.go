package upstream

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hostname upstreams: every address a name resolves to is a member, and
// the name is resolved again every resolve_interval. A member whose
// address stays keeps its health and its pooled connections.

func lookupIP(ctx context.Context, host string) ([]net.IP, error) {
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

// resolve looks up every hostname target and publishes what changed. A
// name that fails to resolve keeps the addresses it had.
func (g *Group) resolve(ctx context.Context) {
	changed := false
	for _, t := range g.targets {
		if t.scheme == "unix" || t.ip != nil {
			continue
		}
		ips, err := g.lookup(ctx, t.host)
		if err != nil || len(ips) == 0 {
			g.log.Warn("upstream does not resolve", "upstream", t.hostHd, "err", err, "kept", len(t.members))
			continue
		}
		slices.SortFunc(ips, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
		var ms []*Member
		for _, ip := range ips {
			addr := net.JoinHostPort(ip.String(), strconv.Itoa(t.port))
			i := slices.IndexFunc(t.members, func(m *Member) bool { return m.Addr == addr })
			if i >= 0 {
				ms = append(ms, t.members[i])
				continue
			}
			ms = append(ms, newTCPMember(ip, t.port, t.hostHd, t.hostHd+" ("+addr+")"))
		}
		if !sameMembers(ms, t.members) {
			addrs := make([]string, len(ms))
			for i, m := range ms {
				addrs[i] = m.Addr
			}
			g.log.Info("upstream resolved", "upstream", t.hostHd, "addrs", addrs)
			g.mu.Lock()
			t.members = ms
			g.mu.Unlock()
			changed = true
		}
	}
	if changed {
		g.mu.Lock()
		g.publish()
		g.mu.Unlock()
	}
}

func sameMembers(a, b []*Member) bool {
	return slices.Equal(a, b)
}

func (g *Group) resolveLoop() {
	t := time.NewTicker(g.cfg.ResolveInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ResolveInterval)
		go func() {
			select {
			case <-g.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		g.resolve(ctx)
		cancel()
	}
}
