package hclconfig

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// maxUnixPath is the room in sockaddr_un.sun_path, less the trailing NUL;
// a longer path fails only at bind time, so it is refused here instead.
const maxUnixPath = 107

// bindAddr is one parsed bind address.
type bindAddr struct {
	addr string // normalized: "host:port" or "unix:/abs/path"
	unix bool
	path string     // unix only
	host string     // tcp only; "" is every address
	ip   netip.Addr // tcp only; valid when host is an IP literal
	port int
}

// parseBind parses and normalizes one bind address; relative unix socket
// paths resolve against dir. The error reads as a sentence for an operator.
func parseBind(s, dir string) (bindAddr, error) {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if p == "" {
			return bindAddr{}, errors.New(`the unix socket path is empty: write "unix:/run/hfork/web.sock" or a path relative to the config file`)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		p = filepath.Clean(p)
		if len(p) > maxUnixPath {
			return bindAddr{}, fmt.Errorf("the unix socket path %q is %d bytes long; the system allows at most %d", p, len(p), maxUnixPath)
		}
		return bindAddr{addr: "unix:" + p, unix: true, path: p}, nil
	}

	if !strings.Contains(s, ":") {
		return bindAddr{}, fmt.Errorf(`%q has no port: write host:port, like "127.0.0.1:8080" or ":8080", or "unix:/path" for a unix socket`, s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return bindAddr{}, fmt.Errorf(`%q looks like an IPv6 address without brackets: write it like "[::1]:8080"`, s)
		}
		return bindAddr{}, fmt.Errorf(`%q is not host:port, like "127.0.0.1:8080" or ":8080"`, s)
	}
	if port == "" {
		return bindAddr{}, fmt.Errorf(`%q has no port: write host:port, like "127.0.0.1:8080" or ":8080"`, s)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return bindAddr{}, fmt.Errorf("the port %q in %q is not a number", port, s)
	}
	if n < 0 || n > 65535 {
		return bindAddr{}, fmt.Errorf("the port %d in %q is out of range: ports go from 1 to 65535 (0 lets the system pick one)", n, s)
	}
	b := bindAddr{port: n}
	switch ip, err := netip.ParseAddr(host); {
	case host == "":
	case err == nil:
		b.ip = ip
		host = ip.String()
	case !validHostname(host):
		return bindAddr{}, fmt.Errorf("%q in %q is neither an IP address nor a host name", host, s)
	default:
		host = strings.ToLower(host)
	}
	b.host = host
	b.addr = net.JoinHostPort(host, strconv.Itoa(n))
	return b, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// overlaps reports whether a and b cannot both listen: the same path, or
// the same port where one host is the other or includes it. Port 0 never
// overlaps, since the system picks a different port for each.
func (a bindAddr) overlaps(b bindAddr) bool {
	if a.unix || b.unix {
		return a.unix && b.unix && a.path == b.path
	}
	if a.port != b.port || a.port == 0 {
		return false
	}
	return a.host == b.host || a.includes(b) || b.includes(a)
}

// includes reports whether a wildcard a also listens on b's address. Go
// listens dual-stack on "" and "::", so those include every address;
// 0.0.0.0 includes every IPv4 address and, to be safe, every host name.
func (a bindAddr) includes(b bindAddr) bool {
	switch {
	case a.host == "" || a.ip.IsValid() && a.ip.Is6() && a.ip.IsUnspecified():
		return true
	case a.ip.IsValid() && a.ip.Is4() && a.ip.IsUnspecified():
		return !b.ip.IsValid() || b.ip.Is4() || b.ip.Is4In6()
	}
	return false
}

// boundAddr is a bind address and where it was declared.
type boundAddr struct {
	bindAddr
	listener string
	rng      hcl.Range
}

// checkBinds reports every address that two binds (of one listener or of
// two) would both listen on.
func (d *decoder) checkBinds(all []boundAddr) {
	for i, b := range all {
		for _, prev := range all[:i] {
			if !b.overlaps(prev.bindAddr) {
				continue
			}
			who := fmt.Sprintf("Listener %q", prev.listener)
			switch {
			case prev.listener == "":
				who = "The metrics block"
			case prev.listener == b.listener:
				who = "This listener"
			}
			if b.addr == prev.addr {
				d.errorf(b.rng, fmt.Sprintf("Duplicate address %q", b.addr),
					"%s already binds %q at %s; two sockets cannot listen on one address.", who, prev.addr, at(prev.rng))
			} else {
				d.errorf(b.rng, fmt.Sprintf("Overlapping address %q", b.addr),
					"%s already binds %q at %s, and one of the two listens on every address of port %d.", who, prev.addr, at(prev.rng), b.port)
			}
			break
		}
	}
}
