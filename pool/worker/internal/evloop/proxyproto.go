package evloop

import "github.com/hfork/hfork/pool/internal/proxyproto"

// proxyHeader takes the PROXY protocol header off data, a new
// connection's first bytes, and reports whether requests may follow in
// the bytes it returns. A connection still short of its header keeps
// what came in c.in (its deadline runs on: read_header_timeout); one
// that does not begin with a header is closed.
func (l *Loop) proxyHeader(c *conn, data []byte) ([]byte, bool) {
	n, src, res := proxyproto.Parse(data)
	switch {
	case res == proxyproto.Bad || res == proxyproto.More && len(data) >= proxyproto.MaxHeader:
		l.log.Debug("connection refused: no PROXY protocol header", "remote", c.remote)
		l.close(c)
		return nil, false
	case res == proxyproto.More:
		if len(c.in) == 0 {
			c.in = append(c.in[:0], data...)
		}
		return nil, false
	}
	c.pp = false
	if src.IsValid() {
		c.remote, c.ppRemote = src.String(), true
	}
	rest := data[n:]
	if len(rest) == 0 {
		c.in = nil
		return nil, false
	}
	return rest, true
}
