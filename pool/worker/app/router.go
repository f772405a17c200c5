package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// route is one precomputed prefix and the app that serves it.
type route struct {
	prefix string
	h      http.Handler
	scope  *scope // the header policy and the rest; nil: none
	// slashRedirect is set for a prefix ending in "/" when no route matches
	// the same prefix without the slash: a request for exactly that path is
	// redirected to the subtree, as http.ServeMux does.
	slashRedirect bool
}

// router picks the route with the longest matching prefix.
type router struct {
	routes []route // longest prefix first
	scope  *scope  // for the answers no route gives: 404, 400
	// redirectHTTPS: Handler answers what no route matches, so the fast
	// path leaves it to net/http.
	redirectHTTPS bool
}

// newRouter builds the router over one set of routes: a host's, or the
// listener's own.
// outer are the levels above the routes: the listener's, and the host's;
// readTimeout is the listener's read_timeout.
func newRouter(read pageFiles, routes []hclconfig.Route, outer []level, redirectHTTPS bool, readTimeout time.Duration, log *slog.Logger) (*router, error) {
	rt := &router{routes: make([]route, 0, len(routes)), redirectHTTPS: redirectHTTPS}
	var err error
	if rt.scope, err = newScope(read, outer); err != nil {
		return nil, err
	}
	for _, rc := range routes {
		if !strings.HasPrefix(rc.Prefix, "/") {
			rt.close()
			return nil, fmt.Errorf("route %q: prefix must start with /", rc.Prefix)
		}
		sc, err := newScope(read, append(slices.Clip(outer), level{rc.Headers, rc.ErrorPages, rc.Compress}))
		if err != nil {
			rt.close()
			return nil, fmt.Errorf("route %q: %w", rc.Prefix, err)
		}
		if sc != nil && rc.App == hclconfig.AppProxy {
			sc.stream = sc.comp != nil
		}
		h, err := newApp(rc, sc, readTimeout, log.With("route", rc.Prefix))
		if err != nil {
			rt.close() // the proxies built so far probe their upstreams
			return nil, fmt.Errorf("route %q: %w", rc.Prefix, err)
		}
		rt.routes = append(rt.routes, route{prefix: rc.Prefix, h: h, scope: sc})
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

// newApp builds rc's app; readTimeout is the listener's read_timeout.
func newApp(rc hclconfig.Route, sc *scope, readTimeout time.Duration, log *slog.Logger) (http.Handler, error) {
	switch rc.App {
	case hclconfig.AppRespond:
		return newRespond(rc.Respond, sc), nil
	case hclconfig.AppStatic:
		return newStatic(rc.Prefix, rc.Static, sc, log)
	case hclconfig.AppProxy:
		p, err := newProxy(rc.Proxy, readTimeout, log)
		if err != nil {
			return nil, err
		}
		p.buildFast(rc.Proxy, sc)
		return p, nil
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
		rt.scope.status(w, r, http.StatusBadRequest)
		return
	}
	for i := range rt.routes {
		rr := &rt.routes[i]
		if strings.HasPrefix(p, rr.prefix) {
			rr.scope.serve(rr.h, w, r)
			return
		}
		if rr.slashRedirect && len(p) == len(rr.prefix)-1 && rr.prefix[:len(p)] == p {
			rr.scope.serve(http.HandlerFunc(redirectSlash), w, r)
			return
		}
	}
	rt.scope.status(w, r, http.StatusNotFound)
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
		http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusGatewayTimeout, http.StatusServiceUnavailable,
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
	if sw, ok := w.(*scopeWriter); ok {
		if pg := sw.sc.pages[code]; pg != nil {
			pg.write(w, code)
			return
		}
	}
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
	if code == http.StatusServiceUnavailable {
		h["Retry-After"] = hdrRetryAfter
	}
	w.WriteHeader(code)
	w.Write(body)
}

// hdrRetryAfter goes with every 503: the worker's trouble is passing.
var hdrRetryAfter = []string{"1"}
