package worker

import (
	"crypto/tls"
	"net"
	"net/netip"
	"time"

	"github.com/hfork/hfork/pool/internal/certset"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// The async class's plain-HTTP listeners are served by an event loop
// (package internal/evloop) when event_loop is on. The worker gives it
// its config and stays the owner of what the loop shares with net/http:
// the connection slots, the request count, the connections handed over,
// and the eviction count. loopHost is that seam.

// newLoop makes the worker's event loop for its listeners.
func newLoop(w *worker, fast app.FastServer, access *app.AccessLog) (*evloop.Loop, error) {
	rht := w.cfg.ReadHeaderTimeout
	if rht <= 0 {
		rht = fallbackReadHeaderTimeout
	}
	if rt := w.cfg.ReadTimeout; rt > 0 && rt < rht {
		rht = rt
	}
	lns := make([]net.Listener, len(w.lns))
	for i, l := range w.lns {
		lns[i] = l.Listener
	}
	return evloop.New(evloop.Config{
		Listeners:         lns,
		Fast:              fast,
		Access:            access,
		Trust:             app.NewTrust(w.cfg.TrustedProxies),
		ProxyProtocol:     w.cfg.ProxyProtocol,
		Log:               w.log,
		ReadHeaderTimeout: rht,
		Idle:              w.limits.idle,
		WriteTimeout:      w.cfg.WriteTimeout,
		Deadline:          w.limits.deadline,
		Grace:             w.grace,
		MaxHeaderBytes:    w.cfg.MaxHeaderBytes,
		KeepAlive:         w.limits.keepAlive,
		Evict:             w.limits.evict,
		PerIP:             w.perIP.max > 0,
		TLS:               loopTLS(w.tls, w.ticketSeed),
		Siblings:          w.siblings,
	}, loopHost{w})
}

// loopTLS is the loop's copy of a TLS listener's config (nil: plain):
// answers go out in full 16 KiB records, as nginx's ssl_buffer_size
// has them, not in the small first records of dynamic sizing, which cost
// a record's overhead and a seal per 1.4 KB at the start of every answer.
// The copy turns its own ticket keys over.
func loopTLS(c *tls.Config, seed []byte) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	c.DynamicRecordSizingDisabled = true
	c.GetConfigForClient = nil
	certset.InstallTickets(c, seed)
	return c
}

// loopHost is the worker as its event loop sees it.
type loopHost struct{ w *worker }

func (h loopHost) Acquire() bool {
	if h.w.connSem == nil {
		return true
	}
	select {
	case h.w.connSem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h loopHost) Release()                    { h.w.release() }
func (h loopHost) Route(host, path string) int { return h.w.metrics.route(host, path) }
func (h loopHost) Served(route, status int, bytes int64, began int64) {
	h.w.servedRoute(route, status, bytes, began)
}
func (h loopHost) DrainIdleClosed()         { h.w.drainIdleClosed.Add(1) }
func (h loopHost) Evicted(now time.Time)    { h.w.noteEviction(now) }
func (h loopHost) Admit(ip netip.Addr) bool { return h.w.perIP.admit(ip) }
func (h loopHost) Leave(ip netip.Addr)      { h.w.perIP.leave(ip) }

// AdoptTLS takes an HTTP/2 connection the loop handed over after its
// handshake: tracked under its tls.Conn, as the listener's own are.
func (h loopHost) AdoptTLS(c net.Conn, ip netip.Addr) net.Conn {
	tc := h.w.adopt(c, ip)
	tc.tls = true
	return tc
}

// Adopt takes the loop's count of the client's address with the
// connection, as it takes its slot: the address the loop counted (the
// peer's, also under proxy_protocol), not what RemoteAddr says now.
func (h loopHost) Adopt(c net.Conn, ip netip.Addr) net.Conn {
	tc := h.w.adopt(c, ip)
	tc.fr = h.w.newFramer(&tc.refused)
	return tc
}
