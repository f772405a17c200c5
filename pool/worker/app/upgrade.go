package app

import (
	"context"
	"net/http"
)

type upgradeKey struct{}

// WithUpgradeHook returns a context whose requests call fn when an app takes
// the connection over (a WebSocket or other Upgrade). The worker uses it to
// stop counting such a connection as an in-flight request: an upgraded
// connection is never a stuck request.
func WithUpgradeHook(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, upgradeKey{}, fn)
}

// Upgraded tells the worker that r's connection is now an upgraded stream.
// It is safe to call when no hook is set.
func Upgraded(r *http.Request) {
	if fn, ok := r.Context().Value(upgradeKey{}).(func()); ok && fn != nil {
		fn()
	}
}
