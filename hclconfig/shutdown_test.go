package hclconfig

import (
	"strings"
	"testing"
	"time"
)

// TestShutdownTimeout: it defaults to five minutes, or graceful_timeout
// when that is longer; it may not be shorter than graceful_timeout; an
// exec or app listener's is its graceful_timeout, and an app listener may
// not set it.
func TestShutdownTimeout(t *testing.T) {
	c := parseOK(t, "server.hcl", `
listener "a" {
  bind = ":8080"
  route "/" {
    respond {}
  }
}
listener "b" {
  bind             = ":8081"
  graceful_timeout = "10m"
  route "/" {
    respond {}
  }
}
listener "c" {
  bind             = ":8082"
  graceful_timeout = "1s"
  shutdown_timeout = "20s"
  route "/" {
    respond {}
  }
}
listener "e" {
  bind             = ":8083"
  class            = "exec"
  command          = ["./app"]
  graceful_timeout = "7s"
}
listener "py" {
  bind             = "127.0.0.1:8084"
  app              = "myapp:app"
  graceful_timeout = "9s"
}
`)
	want := map[string]time.Duration{"a": 5 * time.Minute, "b": 10 * time.Minute, "c": 20 * time.Second, "e": 7 * time.Second, "py": 9 * time.Second}
	for _, l := range c.Listeners {
		if l.ShutdownTimeout != want[l.Name] {
			t.Errorf("%s: shutdown_timeout %v, want %v", l.Name, l.ShutdownTimeout, want[l.Name])
		}
	}
	diags := parseErrs(t, `
listener "a" {
  bind             = ":8080"
  graceful_timeout = "30s"
  shutdown_timeout = "10s"
  route "/" {
    respond {}
  }
}
`)
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "shorter than graceful_timeout") {
		t.Errorf("diagnostics: %v", diags)
	}
	diags = parseErrs(t, `
listener "py" {
  bind             = "127.0.0.1:8084"
  app              = "myapp:app"
  shutdown_timeout = "10m"
}
`)
	if len(diags) != 1 || diags[0].Summary != `Argument "shutdown_timeout" on an app listener` {
		t.Errorf("diagnostics: %v", diags)
	}
}

// TestMaxDrainingGenerations: set in the reload block, at least 1.
func TestMaxDrainingGenerations(t *testing.T) {
	c := parseOK(t, "server.hcl", "reload {\n  max_draining_generations = 1\n}\n"+minimal)
	if c.Reload.MaxDrainingGenerations != 1 {
		t.Errorf("max_draining_generations %d, want 1", c.Reload.MaxDrainingGenerations)
	}
	diags := parseErrs(t, "reload {\n  max_draining_generations = 0\n}\n"+minimal)
	if len(diags) != 1 || diags[0].Summary != "Invalid max_draining_generations" {
		t.Errorf("diagnostics: %v", diags)
	}
}
