package app

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hfork/hfork/hclconfig"
)

// redirect sends every request under its prefix to To.
//
// When both To and the route prefix end in "/", the rest of the request
// path after the prefix is appended to To, so "/old/" → "/new/" sends
// "/old/a/b" to "/new/a/b" (nginx's rewrite ^/old/(.*)$ /new/$1). Otherwise
// Location is To itself. The request's query string is always kept, joined
// to any query To already has.
type redirect struct {
	prefix     string
	to         string
	status     int
	appendPath bool
	toHasQuery bool
}

func newRedirect(prefix string, c hclconfig.Redirect) (*redirect, error) {
	if c.To == "" {
		return nil, errors.New("redirect: to is empty")
	}
	rd := &redirect{
		prefix:     prefix,
		to:         c.To,
		status:     c.Status,
		appendPath: strings.HasSuffix(c.To, "/") && strings.HasSuffix(prefix, "/"),
		toHasQuery: strings.Contains(c.To, "?"),
	}
	if rd.status == 0 {
		rd.status = http.StatusFound
	}
	if rd.status < 300 || rd.status > 399 {
		return nil, fmt.Errorf("redirect: status %d is not a 3xx", rd.status)
	}
	return rd, nil
}

func (rd *redirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	loc := rd.to
	if rd.appendPath {
		// The escaped form keeps what the client encoded ("%20", "%2F")
		// encoded in Location.
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), rd.prefix)
		if !ok {
			// The prefix itself has characters that escape differently.
			rest = (&url.URL{Path: strings.TrimPrefix(r.URL.Path, rd.prefix)}).EscapedPath()
		}
		// To ends in "/": more slashes would make "//host" of "/" + "/host",
		// a redirect to another site.
		loc += strings.TrimLeft(rest, `/\`)
	}
	if q := r.URL.RawQuery; q != "" {
		if rd.toHasQuery {
			loc += "&" + q
		} else {
			loc += "?" + q
		}
	}
	w.Header()["Location"] = []string{loc}
	w.WriteHeader(rd.status)
}
