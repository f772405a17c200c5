package h1

import (
	"bytes"
	"net"
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

// AppendUpstreamRequest appends the request an upstream gets for r, whose
// raw head is head: the hop-by-hop headers dropped, Host set to host, and
// X-Forwarded-For (with remote's IP), -Host and -Proto set, as
// httputil.ReverseProxy does.
func AppendUpstreamRequest(b []byte, r *Request, head []byte, host, remote string) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if r.UserAgent != "" {
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
			if len(xff) > 0 {
				xff = append(xff, ", "...)
			}
			xff = append(xff, v...)
			continue
		}
		if dropForward(name) {
			continue
		}
		b = AppendCanonical(b, name)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	if ip, _, err := net.SplitHostPort(remote); err == nil && ip != "" {
		if len(xff) > 0 {
			xff = append(xff, ", "...)
		}
		xff = append(xff, ip...)
	}
	if len(xff) > 0 {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, xff...)
		b = append(b, "\r\n"...)
	}
	if r.Host != "" {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, r.Host...)
		b = append(b, "\r\n"...)
	}
	return append(b, "X-Forwarded-Proto: http\r\n\r\n"...)
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
