package app

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/hfork/hfork/hclconfig"
)

// The client's address and the request's ID, as both of the worker's
// servers see them: with trusted_proxies, a peer in the list speaks for
// the client in X-Forwarded-For (its rightmost hop that is not itself
// trusted is the client), and its X-Request-ID is kept; every other peer
// is the client, and its X-Forwarded-For and X-Request-ID are dropped as
// forged. Without trusted_proxies no peer is trusted with X-Request-ID,
// and X-Forwarded-For is passed on as it came, with the peer appended.

// Trust is a listener's trusted_proxies; nil trusts no one.
type Trust struct {
	nets []netip.Prefix
	unix bool // unix-socket peers are trusted
}

// NewTrust makes the trust of list (CIDR ranges and "unix"), or nil.
func NewTrust(list []string) *Trust {
	if len(list) == 0 {
		return nil
	}
	t := &Trust{}
	for _, s := range list {
		if s == hclconfig.TrustUnix {
			t.unix = true
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			t.nets = append(t.nets, p.Masked())
		} else if ip, err := netip.ParseAddr(s); err == nil {
			t.nets = append(t.nets, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return t
}

// Trusts reports whether peer (an IP; "" for a unix-socket peer) is a
// trusted proxy.
func (t *Trust) Trusts(peer string) bool {
	if t == nil {
		return false
	}
	if peer == "" {
		return t.unix
	}
	ip, err := netip.ParseAddr(peer)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, n := range t.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Client is the client's IP for a request from peer (an IP, "" for a
// unix-socket peer) with X-Forwarded-For xff, and the hops before it in
// xff (what a proxy forwards in front of it). A hop that is not an IP
// ends the walk: what lies left of it cannot be believed.
func (t *Trust) Client(peer, xff string) (client, before string) {
	if !t.Trusts(peer) {
		return peer, ""
	}
	client, rest := peer, xff
	for rest != "" {
		i := strings.LastIndexByte(rest, ',')
		hop := strings.TrimSpace(rest[i+1:])
		if i < 0 {
			rest = ""
		} else {
			rest = rest[:i]
		}
		if _, err := netip.ParseAddr(hop); err != nil {
			break
		}
		client = hop
		if !t.Trusts(hop) {
			return client, strings.TrimSpace(rest)
		}
	}
	return client, ""
}

// ValidRequestID accepts what a trusted peer may pass as X-Request-ID: up
// to 128 visible ASCII bytes, nothing to break a header or a log line.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// requestIDs makes request IDs: 32 hex digits, nginx's $request_id's
// shape, from a random per-process prefix and a counter, so making one
// costs no system call.
var requestIDs struct {
	prefix [16]byte
	n      atomic.Uint64
}

func init() {
	var b [8]byte
	rand.Read(b[:])
	hex.Encode(requestIDs.prefix[:], b[:])
}

// AppendRequestID appends a new request ID to b.
func AppendRequestID(b []byte) []byte {
	b = append(b, requestIDs.prefix[:]...)
	n := requestIDs.n.Add(1)
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[n>>uint(shift)&0xf])
	}
	return b
}

// ClientHandler gives next, for each request, the client's address (in
// RemoteAddr, with port 0 when it came from X-Forwarded-For), an
// X-Forwarded-For that holds only the hops before it, and an X-Request-ID
// (kept from a trusted peer, made otherwise). It runs outside the access
// log, which then logs the client and the ID.
//
// A listener with no proxy route, no access log and no trusted_proxies
// has no use for either: next is returned as it is.
func ClientHandler(l hclconfig.Listener, next http.Handler) http.Handler {
	used := len(l.TrustedProxies) > 0 || l.AccessLog.File != ""
	for _, r := range l.Routes {
		used = used || r.App == hclconfig.AppProxy
	}
	if !used {
		return next
	}
	return &clientHandler{trust: NewTrust(l.TrustedProxies), next: next}
}

type clientHandler struct {
	trust *Trust
	next  http.Handler
}

func (h *clientHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer, _ := clientIP(r.RemoteAddr)
	trusted := h.trust.Trusts(peer)
	id := r.Header.Get("X-Request-ID")
	keepID := trusted && ValidRequestID(id)
	r2 := r.WithContext(r.Context())
	r2.Header = r.Header.Clone()
	if !keepID {
		r2.Header.Set("X-Request-ID", string(AppendRequestID(nil)))
	}
	if h.trust != nil {
		client, before := h.trust.Client(peer, strings.Join(r.Header["X-Forwarded-For"], ", "))
		if client != peer {
			r2.RemoteAddr = net.JoinHostPort(client, "0")
		}
		if before != "" {
			r2.Header["X-Forwarded-For"] = []string{before}
		} else {
			delete(r2.Header, "X-Forwarded-For")
		}
	}
	h.next.ServeHTTP(w, r2)
}
