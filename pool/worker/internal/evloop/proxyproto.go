package evloop

import (
	"net"
	"net/netip"

	"github.com/hfork/hfork/pool/internal/proxyproto"
)

// ppResult is what proxyHeader made of a new connection's first bytes.
type ppResult uint8

const (
	ppRest   ppResult = iota // the header is taken; the bytes after it follow
	ppWait                   // more is to come: part of the header, or nothing after it yet
	ppClosed                 // no header: the connection is closed
)

// proxyHeader takes the PROXY protocol header off data, a new
// connection's first bytes (for a TLS listener, before the ClientHello).
// A connection still short of its header keeps what came in c.in (its
// deadline runs on: read_header_timeout); one that does not begin with a
// header is closed.
func (l *Loop) proxyHeader(c *conn, data []byte) ([]byte, ppResult) {
	n, src, res := proxyproto.Parse(data)
	switch {
	case res == proxyproto.Bad || res == proxyproto.More && len(data) >= proxyproto.MaxHeader:
		l.log.Debug("connection refused: no PROXY protocol header", "remote", c.remote)
		l.close(c)
		return nil, ppClosed
	case res == proxyproto.More:
		if len(c.in) == 0 {
			c.in = append(c.in[:0], data...)
		}
		return nil, ppWait
	}
	c.pp = false
	if src.IsValid() {
		c.remote, c.ppRemote = src.String(), true
	}
	rest := data[n:]
	if len(rest) == 0 {
		c.in = nil
		return nil, ppWait
	}
	return rest, ppRest
}

// ppAddr is the PROXY header's client of c, for net/http to see as the
// remote address of a connection handed over; nil when the header named
// none (a LOCAL command, or UNKNOWN), and the peer stands.
func ppAddr(c *conn) net.Addr {
	if !c.ppRemote {
		return nil
	}
	src, err := netip.ParseAddrPort(c.remote)
	if err != nil {
		return nil
	}
	return net.TCPAddrFromAddrPort(src)
}
