package hclconfig

import (
	"testing"
	"time"
)

// TestLimitDefaults: every built-in class gets the same safe limits, and a
// change to any of them replaces the workers.
func TestLimitDefaults(t *testing.T) {
	c := parseOK(t, "server.hcl", `
listener "s" {
  bind  = ":8080"
  class = "sync"
  route "/" {
    respond {}
  }
}
listener "t" {
  bind  = ":8081"
  class = "thread"
  route "/" {
    respond {}
  }
}
`)
	for _, l := range c.Listeners {
		if l.MaxHeaderBytes != 1<<20 || l.MaxBodyBytes != 100<<20 || l.ReadHeaderTimeout != 10*time.Second || l.ReadTimeout != 0 || l.WriteTimeout != time.Minute {
			t.Errorf("%s: limits %d %d %v %v %v", l.Name, l.MaxHeaderBytes, l.MaxBodyBytes, l.ReadHeaderTimeout, l.ReadTimeout, l.WriteTimeout)
		}
	}
	base := c.Listeners[0]
	for name, change := range map[string]func(*Listener){
		"max_header_bytes":       func(l *Listener) { l.MaxHeaderBytes = 4096 },
		"max_body_bytes":         func(l *Listener) { l.MaxBodyBytes = 0 },
		"read_header_timeout":    func(l *Listener) { l.ReadHeaderTimeout = time.Second },
		"read_timeout":           func(l *Listener) { l.ReadTimeout = time.Minute },
		"write_timeout":          func(l *Listener) { l.WriteTimeout = 0 },
		"max_connections_per_ip": func(l *Listener) { l.MaxConnsPerIP = 10 },
		"underscores_in_headers": func(l *Listener) { l.UnderscoresInHeaders = true },
		"redirect_https":         func(l *Listener) { l.RedirectHTTPS, l.HTTPSPort = true, 443 },
		"socket_mode":            func(l *Listener) { l.SocketMode = "0660" },
	} {
		l := base
		change(&l)
		if l.Fingerprint() == base.Fingerprint() {
			t.Errorf("changing %s kept the fingerprint", name)
		}
	}
}
