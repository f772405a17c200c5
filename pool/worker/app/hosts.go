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
	hosts *Hosts
	def   *router   // the listener's own routes; none is all 404
	all   []*router // every router: hosts in file order (as hosts counts them), def last
}

// Hosts picks a listener's host block by a request's Host header. The
// site serves by it and the worker's metrics count by it, so a request is
// counted under the routes that served it.
type Hosts struct {
	exact map[string]int // by lower-case name
	wild  []wildHost     // longest suffix first
}

// wildHost is a "*.example.com" name as its suffix, ".example.com".
type wildHost struct {
	suffix string
	host   int
}

// NewHosts indexes hosts' names (lower-case, as the config holds them).
func NewHosts(hosts []hclconfig.Host) *Hosts {
	h := &Hosts{exact: map[string]int{}}
	for i, hb := range hosts {
		for _, n := range hb.Names {
			if suf, ok := strings.CutPrefix(n, "*"); ok {
				h.wild = append(h.wild, wildHost{suffix: suf, host: i})
			} else {
				h.exact[n] = i
			}
		}
	}
	slices.SortStableFunc(h.wild, func(a, b wildHost) int { return len(b.suffix) - len(a.suffix) })
	return h
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
	s := &site{hosts: NewHosts(l.Hosts)}
	read := pageFiles{}
	for _, h := range l.Hosts {
		rt, err := newRouter(read, h.Routes, []level{{l.Headers, l.ErrorPages, l.Compress}, {h.Headers, h.ErrorPages, h.Compress}}, false, l.ReadTimeout, log.With("host", h.Label))
		if err != nil {
			Close(s)
			return nil, fmt.Errorf("host %q: %w", h.Label, err)
		}
		s.all = append(s.all, rt)
	}
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

// pick returns the router for a request's Host header.
func (s *site) pick(host string) *router {
	if i := s.hosts.Pick(host); i >= 0 {
		return s.all[i]
	}
	return s.def
}

// Pick is the index of the host block that serves a request with this
// Host header, or -1 for the listener's own routes. Matching ignores case,
// the port and a trailing dot, and allocates nothing.
func (h *Hosts) Pick(host string) int {
	if h == nil || len(h.exact)+len(h.wild) == 0 {
		return -1
	}
	host = hostOnly(host)
	if host == "" || len(host) > maxHostLen {
		return -1
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
	if i, ok := h.exact[string(name)]; ok {
		return i
	}
	for _, w := range h.wild {
		// "*.example.com" wants at least one label before the suffix.
		if len(name) > len(w.suffix) && string(name[len(name)-len(w.suffix):]) == w.suffix {
			return w.host
		}
	}
	return -1
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
