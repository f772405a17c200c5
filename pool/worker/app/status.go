package app

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strings"
	"sync/atomic"
)

// The status app shows the master's view of every listener. A worker knows
// nothing of its siblings or of other listeners, so the master pushes its
// view (the same JSON as `hfork -s status --json`, plus requests per second
// over the last minute) down the control pipe of every worker whose
// listener has a status route, once a second; the app serves the latest
// copy. The page is one self-contained HTML file: inline style and script,
// an SVG chart, no external assets. It fetches the JSON again every two
// seconds, so it refreshes itself.

//go:embed status.html
var statusHTML string

var statusPage = template.Must(template.New("status").Parse(statusHTML))

// statusData is the master's latest push; nil until the first arrives.
var statusData atomic.Pointer[[]byte]

// PublishStatus hands the status app the master's latest view. One worker
// process serves one listener, so one copy serves every status route.
func PublishStatus(b []byte) {
	c := bytes.Clone(b)
	statusData.Store(&c)
}

type status struct{}

func (status) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeStatus(w, http.StatusMethodNotAllowed)
		return
	}
	p := statusData.Load()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept")
	if wantsJSON(r) {
		if p == nil {
			http.Error(w, `{"error":"no status from the master yet"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*p)
		return
	}
	data := "null"
	if p != nil {
		data = string(*p)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The script element holds the JSON as the master encoded it:
	// encoding/json writes <, > and & as \u escapes, so no value can end
	// the element early.
	statusPage.Execute(w, template.JS(data))
}

// wantsJSON: a client that names application/json before text/html.
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	j := strings.Index(a, "application/json")
	h := strings.Index(a, "text/html")
	return j >= 0 && (h < 0 || j < h)
}
