package app

import "net/http"

// Close ends what a handler from New runs in the background: the probes
// and name resolution of its proxy routes' upstream groups. A worker that
// swapped its routes (see the worker's swap.go) closes the old handler
// once no request uses it; one that fails to build closes what it built.
func Close(h http.Handler) {
	if s, ok := h.(*site); ok {
		for _, rt := range s.all {
			rt.close()
		}
	}
}

func (rt *router) close() {
	if rt == nil {
		return
	}
	for _, r := range rt.routes {
		if c, ok := r.h.(interface{ Close() }); ok {
			c.Close()
		}
	}
}
