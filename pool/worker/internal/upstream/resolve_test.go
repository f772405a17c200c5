package upstream

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

// TestResolveLocalhost: a hostname upstream has a member per address the
// system resolver gives, each sent the name as Host.
func TestResolveLocalhost(t *testing.T) {
	g, _ := newGroup(t, hclconfig.Proxy{Upstream: []string{"http://localhost:8080"}})
	ms := g.Members()
	if len(ms) == 0 {
		t.Fatal("localhost resolved to nothing")
	}
	for _, m := range ms {
		ip, _, _ := net.SplitHostPort(m.Addr)
		if !net.ParseIP(ip).IsLoopback() || m.Host != "localhost:8080" || !strings.HasPrefix(m.Name, "localhost:8080 (") {
			t.Errorf("member %+v", m)
		}
	}
}

// TestResolveAgain: a new answer adds and drops members; an address that
// stays keeps its member (its health and pooled connections).
func TestResolveAgain(t *testing.T) {
	g, logs := newGroup(t, hclconfig.Proxy{Upstream: []string{"http://app.internal:80", "unix:/run/x.sock"}})
	answer := []string{"192.0.2.1", "192.0.2.2"}
	g.lookup = func(context.Context, string) ([]net.IP, error) {
		var ips []net.IP
		for _, s := range answer {
			ips = append(ips, net.ParseIP(s))
		}
		return ips, nil
	}
	g.resolve(context.Background())
	before := g.Members()
	if len(before) != 3 || before[0].Addr != "192.0.2.1:80" || before[2].Network != "unix" {
		t.Fatalf("members %v", names(before))
	}
	answer = []string{"192.0.2.2", "192.0.2.3"}
	g.resolve(context.Background())
	after := g.Members()
	if len(after) != 3 || after[0] != before[1] || after[1].Addr != "192.0.2.3:80" || after[1].ID <= before[2].ID {
		t.Fatalf("members %v", names(after))
	}
	if n := strings.Count(logs.String(), "upstream resolved"); n != 2 {
		t.Errorf("%d resolved lines, want 2:\n%s", n, logs)
	}
}

func names(ms []*Member) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return s
}
