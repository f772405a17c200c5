package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/hfork/hfork/hclconfig"
)

// route is one precomputed prefix and the app that serves it.
type route struct {
	prefix string
	h      http.Handler
	// slashRedirect is set for a prefix ending in "/" when no route matches
	// the same prefix without the slash: a request for exactly that path is
	// redirected to the subtree, as http.ServeMux does.
	slashRedirect bool
}

// router picks the route with the longest matching prefix.
type router struct {
	routes []route // longest prefix first
	// redirectHTTPS: Handler answers what no route matches, so the fast
	// path leaves it to net/http.
	redirectHTTPS bool
}

// New builds the handler for one listener: its routes, each served by its
// built-in app. Everything a request needs is computed here, so serving a
// request reads no configuration.
//
// A route prefix matches as a plain string prefix ("/api" matches "/api/x"
// and "/apix", as nginx's prefix locations do); the longest one wins. A
// request for a subtree prefix without its trailing slash ("/static" for
// "/static/") is redirected to the slash form, unless some route has exactly
// that prefix. No matching route is 404.
func New(l hclconfig.Listener, log *slog.Logger) (http.Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	rt := &router{routes: make([]route, 0, len(l.Routes)), redirectHTTPS: l.RedirectHTTPS}
	for _, rc := range l.Routes {
		if !strings.HasPrefix(rc.Prefix, "/") {
			return nil, fmt.Errorf("route %q: prefix must start with /", rc.Prefix)
		}
		h, err := newApp(rc, log.With("route", rc.Prefix))
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rc.Prefix, err)
		}
		rt.routes = append(rt.routes, route{prefix: rc.Prefix, h: h})
	}
	nextID := 0
	for _, r := range rt.routes {
		if p, ok := r.h.(*proxy); ok {
			p.buildFast(&nextID)
		}
	}
	// The config sorts routes already; sorting again keeps matching correct
	// for any caller, and stability keeps file order among equal lengths.
	slices.SortStableFunc(rt.routes, func(a, b route) int { return len(b.prefix) - len(a.prefix) })
	for i := range rt.routes {
		p := rt.routes[i].prefix
		if len(p) > 1 && strings.HasSuffix(p, "/") {
			bare := p[:len(p)-1]
			rt.routes[i].slashRedirect = !slices.ContainsFunc(rt.routes, func(o route) bool { return o.prefix == bare })
		}
	}
	return rt, nil
}

func newApp(rc hclconfig.Route, log *slog.Logger) (http.Handler, error) {
	switch rc.App {
	case hclconfig.AppRespond:
		return newRespond(rc.Respond), nil
	case hclconfig.AppStatic:
		return newStatic(rc.Prefix, rc.Static, log)
	case hclconfig.AppProxy:
		return newProxy(rc.Proxy, log)
	case hclconfig.AppRedirect:
		return newRedirect(rc.Prefix, rc.Redirect)
	case hclconfig.AppStatus:
		return status{}, nil
	default:
		return nil, fmt.Errorf("unknown app %q", rc.App)
	}
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	// Real clients remove dot segments before sending (RFC 3986 5.2.4);
	// one that arrives anyway would match a prefix it then leaves ("/static/../api"),
	// so it is refused rather than guessed at.
	if !strings.HasPrefix(p, "/") || hasDotSegment(p) {
		writeStatus(w, http.StatusBadRequest)
		return
	}
	for i := range rt.routes {
		rr := &rt.routes[i]
		if strings.HasPrefix(p, rr.prefix) {
			rr.h.ServeHTTP(w, r)
			return
		}
		if rr.slashRedirect && len(p) == len(rr.prefix)-1 && rr.prefix[:len(p)] == p {
			redirectSlash(w, r)
			return
		}
	}
	writeStatus(w, http.StatusNotFound)
}

// redirectSlash sends the client to r's path with a trailing slash, keeping
// the query. GET and HEAD get 301 like http.ServeMux; other methods get 308
// so the method and body survive the redirect.
func redirectSlash(w http.ResponseWriter, r *http.Request) {
	loc := r.URL.EscapedPath() + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusPermanentRedirect
	}
	w.Header()["Location"] = []string{loc}
	w.WriteHeader(code)
}

// hasDotSegment reports whether p has a "." or ".." path segment.
func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}

// Shared header values for the short error answers, so writing one
// allocates nothing but what net/http needs.
var (
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
	hdrNoSniff   = []string{"nosniff"}
	statusBodies = map[int][]byte{}
	statusLens   = map[int][]string{}
)

func init() {
	for _, code := range []int{
		http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusGatewayTimeout,
	} {
		b := []byte(fmt.Sprintf("%d %s\n", code, strings.ToLower(http.StatusText(code))))
		statusBodies[code] = b
		statusLens[code] = []string{fmt.Sprint(len(b))}
		addFastStatus(code)
	}
}

// writeStatus answers with a short plain-text body naming code, like
// http.Error, without its per-call allocations.
func writeStatus(w http.ResponseWriter, code int) {
	h := w.Header()
	body, ok := statusBodies[code]
	if !ok {
		body = []byte(fmt.Sprintf("%d %s\n", code, strings.ToLower(http.StatusText(code))))
		h["Content-Length"] = []string{fmt.Sprint(len(body))}
	} else {
		h["Content-Length"] = statusLens[code]
	}
	h["Content-Type"] = hdrTextPlain
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(code)
	w.Write(body)
}
