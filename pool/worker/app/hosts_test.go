package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

// hostListener has the host blocks the matching table needs.
func hostListener(own ...hclconfig.Route) hclconfig.Listener {
	host := func(label string, names ...string) hclconfig.Host {
		return hclconfig.Host{Label: label, Names: names, Routes: []hclconfig.Route{respondRoute("/", label)}}
	}
	return hclconfig.Listener{Name: "web", Routes: own, Hosts: []hclconfig.Host{
		host("shop", "shop.example.com"),
		host("wild", "*.example.com"),
		host("deep", "*.eu.example.com"),
		host("exact-under-wild", "a.eu.example.com"),
		host("ip", "127.0.0.1"),
	}}
}

func TestHostMatching(t *testing.T) {
	h, err := New(hostListener(respondRoute("/", "default")), quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, want string }{
		{"shop.example.com", "shop"},
		{"SHOP.Example.COM", "shop"},             // case is ignored
		{"shop.example.com:8080", "shop"},        // and the port
		{"shop.example.com.", "shop"},            // and a trailing dot
		{"www.example.com", "wild"},              // a wildcard
		{"a.b.example.com", "wild"},              // at any depth
		{"example.com", "default"},               // but not the bare domain
		{"x.eu.example.com", "deep"},             // the longer wildcard wins
		{"a.eu.example.com", "exact-under-wild"}, // exact beats any wildcard
		{"eu.example.com", "wild"},
		{"127.0.0.1:80", "ip"},
		{"[::1]:80", "default"},
		{"other.org", "default"},
		{"", "default"},
		{"shop.example.com.evil.org", "default"},
		{"xexample.com", "default"},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Body.String(); got != tc.want {
			t.Errorf("Host %q: served by %q, want %q", tc.host, got, tc.want)
		}
		// The fast path picks the same host.
		var resp FastResponse
		resp.Reset()
		if !h.(FastServer).ServeFast(&FastRequest{Method: "GET", Path: "/", Host: tc.host}, &resp) || string(resp.Body) != tc.want {
			t.Errorf("Host %q: fast path served %q, want %q", tc.host, resp.Body, tc.want)
		}
	}
}

func TestHostsWithoutOwnRoutes(t *testing.T) {
	// No listener routes: a Host that matches no host block is 404, over a
	// real connection with Go's client.
	h, err := New(hostListener(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for host, want := range map[string]int{"shop.example.com": 200, "nowhere.org": 404} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %q: %d %q, want %d", host, res.StatusCode, body, want)
		}
	}
}

func TestHostUpstreamIDs(t *testing.T) {
	// Proxy routes in different hosts pool their connections apart: every
	// fast upstream has its own ID.
	proxyRoute := func(up string) hclconfig.Route {
		return hclconfig.Route{Prefix: "/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{up}}}
	}
	l := hclconfig.Listener{Name: "web", Routes: []hclconfig.Route{proxyRoute("http://127.0.0.1:9001")}, Hosts: []hclconfig.Host{
		{Label: "a", Names: []string{"a.test"}, Routes: []hclconfig.Route{proxyRoute("http://127.0.0.1:9002")}},
		{Label: "b", Names: []string{"b.test"}, Routes: []hclconfig.Route{proxyRoute("http://127.0.0.1:9003")}},
	}}
	h, err := New(l, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ps := h.(FastServer).FastProxies()
	if len(ps) != 3 {
		t.Fatalf("%d fast proxy routes, want 3", len(ps))
	}
	// The loop pools upstream connections by member ID: one ID, one
	// address, across every host's routes.
	ids := map[int]string{}
	for _, p := range ps {
		for _, m := range p.Group.Members() {
			if other, dup := ids[m.ID]; dup {
				t.Errorf("member %s has the ID %d of %s", m.Name, m.ID, other)
			}
			ids[m.ID] = m.Name
		}
	}
	if len(ids) != 3 {
		t.Errorf("%d upstream members, want 3", len(ids))
	}
}

func TestHostFastPathAllocatesNothing(t *testing.T) {
	// Picking a host (lower-casing, port and dot stripped), a route, its
	// header policy and a compressed respond body costs no allocation.
	l := hostListener(respondRoute("/", "default"))
	l.Hosts[0].Headers = hclconfig.Headers{Set: map[string]string{"X-Frame-Options": "DENY"}}
	l.Hosts[0].Routes = append(l.Hosts[0].Routes, hclconfig.Route{Prefix: "/big", App: hclconfig.AppRespond,
		Respond:  hclconfig.Respond{Status: 200, Body: strings.Repeat("compress me ", 500)},
		Compress: hclconfig.Compress{Encodings: []string{"zstd", "gzip"}, Types: []string{"text/*"}, MinSize: 1024, Level: 1}})
	h, err := New(l, quiet)
	if err != nil {
		t.Fatal(err)
	}
	fs := h.(FastServer)
	var resp FastResponse
	for _, req := range []FastRequest{
		{Method: "GET", Path: "/", Host: "SHOP.example.com:8080"},
		{Method: "GET", Path: "/", Host: "x.eu.example.com"},
		{Method: "GET", Path: "/missing/..x", Host: "shop.example.com"},
		{Method: "GET", Path: "/big", Host: "shop.example.com", AcceptEncoding: "gzip;q=0.9, zstd;q=0.5"},
	} {
		n := testing.AllocsPerRun(100, func() {
			resp.Reset()
			if !fs.ServeFast(&req, &resp) {
				t.Fatal("declined")
			}
		})
		if n != 0 {
			t.Errorf("%s %s%s: %.1f allocations per request", req.Method, req.Host, req.Path, n)
		}
	}
}
