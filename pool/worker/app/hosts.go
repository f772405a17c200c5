package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/hfork/hfork/hclconfig"
)

// site is what New returns: the router of each host block and the
// listener's own, chosen by the request's Host.
type site struct {
	exact map[string]*router // by lower-case name
	wild  []wildHost         // longest suffix first
	def   *router            // the listener's own routes; none is all 404
	all   []*router          // every router, hosts in file order, def last
}

// wildHost is a "*.example.com" name as its suffix, ".example.com".
type wildHost struct {
	suffix string
	rt     *router
}

// New builds the handler for one listener: its hosts and routes, each
// route served by its built-in app. Everything a request needs is computed
// here, so serving a request reads no configuration.
//
// The Host header picks the routes: an exact name beats a wildcard, the
// longest wildcard beats a shorter one, and a Host no host block names is
// served by the listener's own routes. Within them, a route prefix matches
// as a plain string prefix ("/api" matches "/api/x" and "/apix", as
// nginx's prefix locations do); the longest one wins. A request for a
// subtree prefix without its trailing slash ("/static" for "/static/") is
// redirected to the slash form, unless some route has exactly that prefix.
// No matching route is 404.
func New(l hclconfig.Listener, log *slog.Logger) (http.Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &site{exact: map[string]*router{}}
	read := pageFiles{}
	for _, h := range l.Hosts {
		rt, err := newRouter(read, h.Routes, []level{{l.Headers, l.ErrorPages, l.Compress}, {h.Headers, h.ErrorPages, h.Compress}}, false, l.ReadTimeout, log.With("host", h.Label))
		if err != nil {
			Close(s)
			return nil, fmt.Errorf("host %q: %w", h.Label, err)
		}
		s.all = append(s.all, rt)
		for _, n := range h.Names {
			if suf, ok := strings.CutPrefix(n, "*"); ok {
				s.wild = append(s.wild, wildHost{suffix: suf, rt: rt})
			} else {
				s.exact[n] = rt
			}
		}
	}
	slices.SortStableFunc(s.wild, func(a, b wildHost) int { return len(b.suffix) - len(a.suffix) })
	def, err := newRouter(read, l.Routes, []level{{l.Headers, l.ErrorPages, l.Compress}}, l.RedirectHTTPS, l.ReadTimeout, log)
	if err != nil {
		Close(s)
		return nil, err
	}
	s.def = def
	s.all = append(s.all, def)
	return s, nil
}

// maxHostLen bounds the Host a site looks up; DNS names are at most 253
// bytes, and a longer header matches no host block.
const maxHostLen = 255

// pick returns the router for a request's Host header. Matching ignores
// case, the port and a trailing dot, and allocates nothing.
func (s *site) pick(host string) *router {
	if len(s.all) == 1 {
		return s.def
	}
	host = hostOnly(host)
	if host == "" || len(host) > maxHostLen {
		return s.def
	}
	var buf [maxHostLen]byte
	name := buf[:len(host)]
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[i] = c
	}
	if rt, ok := s.exact[string(name)]; ok {
		return rt
	}
	for _, w := range s.wild {
		// "*.example.com" wants at least one label before the suffix.
		if len(name) > len(w.suffix) && string(name[len(name)-len(w.suffix):]) == w.suffix {
			return w.rt
		}
	}
	return s.def
}

// hostOnly strips the port and a trailing dot from a Host header. An
// IPv6 literal keeps its brackets, so it matches no name.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.pick(r.Host).ServeHTTP(w, r)
}

func (s *site) ServeFast(req *FastRequest, resp *FastResponse) bool {
	return s.pick(req.Host).ServeFast(req, resp)
}

func (s *site) FastRoutes() bool {
	return slices.ContainsFunc(s.all, (*router).FastRoutes)
}

// FastProxies lists every proxy route ServeFast may answer with.
func (s *site) FastProxies() []*FastProxy {
	var ps []*FastProxy
	for _, rt := range s.all {
		ps = append(ps, rt.FastProxies()...)
	}
	return ps
}
