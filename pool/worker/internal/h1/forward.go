package h1

import (
	"bytes"
	"net"

	"github.com/hfork/hfork/pool/worker/app"
)

// dropForward reports the headers that belong to one connection, not to
// the request or answer (RFC 9110 7.6.1), which a proxy drops; with them
// the ones the proxy sets itself.
func dropForward(name []byte) bool {
	switch len(name) {
	case 2:
		return LowerIs(name, "te")
	case 4:
		return LowerIs(name, "host")
	case 7:
		return LowerIs(name, "trailer") || LowerIs(name, "upgrade")
	case 10:
		return LowerIs(name, "connection") || LowerIs(name, "keep-alive") || LowerIs(name, "user-agent")
	case 12:
		return LowerIs(name, "x-request-id")
	case 14:
		return LowerIs(name, "content-length")
	case 15:
		return LowerIs(name, "x-forwarded-for")
	case 16:
		return LowerIs(name, "proxy-connection") || LowerIs(name, "x-forwarded-host")
	case 17:
		return LowerIs(name, "transfer-encoding") || LowerIs(name, "x-forwarded-proto")
	case 18:
		return LowerIs(name, "proxy-authenticate")
	case 19:
		return LowerIs(name, "proxy-authorization")
	}
	return false
}

// Forward is what an upstream request carries besides the client's head.
type Forward struct {
	Host   string // the upstream's Host
	Remote string // the peer, "ip:port"; "" for a unix-socket peer
	// Chain, with UseChain, is the whole X-Forwarded-For to send (the
	// listener has trusted_proxies): the client's own is not used.
	Chain     string
	UseChain  bool
	RequestID string         // X-Request-ID, in place of the client's
	Proxy     *app.FastProxy // its request_headers; may be nil
	HTTPS     bool           // the client came over TLS: X-Forwarded-Proto is https
}

// AppendUpstreamRequest appends the request an upstream gets for r, whose
// raw head is head: the hop-by-hop headers dropped, Host set to f.Host,
// and X-Forwarded-For (the client's, with the peer's IP appended, or
// f.Chain), -Host and -Proto and X-Request-ID set, as the proxy app does.
// f.Proxy's request_headers apply after: its Drop names are left out,
// its Set and Add lines come last. It returns where the Host value
// begins in b.
func AppendUpstreamRequest(b []byte, r *Request, head []byte, f *Forward) ([]byte, int) {
	host, remote, px := f.Host, f.Remote, f.Proxy
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	hostAt := len(b)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	var drop []string
	if px != nil {
		drop = px.Drop
	}
	if r.UserAgent != "" && !droppedS("user-agent", drop) {
		b = append(b, "User-Agent: "...)
		b = append(b, r.UserAgent...)
		b = append(b, "\r\n"...)
	}
	var xffBuf [128]byte
	xff := xffBuf[:0]
	lines := head[bytes.IndexByte(head, '\n')+1:]
	for len(lines) > 2 {
		nl := bytes.IndexByte(lines, '\n')
		line := lines[:nl-1]
		lines = lines[nl+1:]
		colon := bytes.IndexByte(line, ':')
		name, v := line[:colon], bytes.Trim(line[colon+1:], " \t")
		if len(name) == 15 && LowerIs(name, "x-forwarded-for") {
			if f.UseChain {
				continue
			}
			if len(xff) > 0 {
				xff = append(xff, ", "...)
			}
			xff = append(xff, v...)
			continue
		}
		if dropForward(name) || dropped(name, drop) {
			continue
		}
		b = AppendCanonical(b, name)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	if f.UseChain {
		xff = append(xff, f.Chain...)
	} else if ip, _, err := net.SplitHostPort(remote); err == nil && ip != "" {
		if len(xff) > 0 {
			xff = append(xff, ", "...)
		}
		xff = append(xff, ip...)
	}
	if len(xff) > 0 && !droppedS("x-forwarded-for", drop) {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, xff...)
		b = append(b, "\r\n"...)
	}
	if r.Host != "" && !droppedS("x-forwarded-host", drop) {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, r.Host...)
		b = append(b, "\r\n"...)
	}
	if !droppedS("x-forwarded-proto", drop) {
		if f.HTTPS {
			b = append(b, "X-Forwarded-Proto: https\r\n"...)
		} else {
			b = append(b, "X-Forwarded-Proto: http\r\n"...)
		}
	}
	if f.RequestID != "" && !droppedS("x-request-id", drop) {
		b = append(b, "X-Request-Id: "...)
		b = append(b, f.RequestID...)
		b = append(b, "\r\n"...)
	}
	if px != nil {
		for _, kv := range px.Set {
			b = appendLine(b, kv)
		}
		for _, kv := range px.Add {
			b = appendLine(b, kv)
		}
	}
	return append(b, "\r\n"...), hostAt
}

func appendLine(b []byte, kv [2]string) []byte {
	b = append(b, kv[0]...)
	b = append(b, ": "...)
	b = append(b, kv[1]...)
	return append(b, "\r\n"...)
}

// droppedS reports whether one of hfork's own headers is in drop.
func droppedS(name string, drop []string) bool {
	for _, d := range drop {
		if d == name {
			return true
		}
	}
	return false
}

// dropped reports whether name is one of drop's lower-case names.
func dropped(name []byte, drop []string) bool {
	for _, d := range drop {
		if len(d) == len(name) && LowerIs(name, d) {
			return true
		}
	}
	return false
}

// AppendCanonical appends a header name as net/http spells it: each
// dash-separated word capitalized.
func AppendCanonical(b, name []byte) []byte {
	upper := true
	for _, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}
