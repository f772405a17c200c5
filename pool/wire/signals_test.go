package wire

import (
	"syscall"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestSignalNames(t *testing.T) {
	for _, s := range signals {
		got, ok := Signal(s.name)
		if !ok || got != s.sig {
			t.Errorf("Signal(%q) = %v, %v", s.name, got, ok)
		}
		if n := SignalName(s.sig); n != s.name {
			t.Errorf("SignalName(%v) = %q, want %q", s.sig, n, s.name)
		}
	}
	if _, ok := Signal("SIGTERM"); ok {
		t.Error("a SIG prefix is hclconfig's to strip, not a name here")
	}
	if n := SignalName(syscall.SIGCHLD); n != syscall.SIGCHLD.String() {
		t.Errorf("SignalName(SIGCHLD) = %q", n)
	}
}

// Every stop_signal the config accepts is one the table can send: the
// names are checked in hclconfig and sent from here.
func TestStopSignalsTheConfigAccepts(t *testing.T) {
	candidates := []string{"ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "KILL",
		"PIPE", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN",
		"TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ"}
	accepted := 0
	for _, name := range candidates {
		src := `listener "x" {
  bind        = "127.0.0.1:1"
  class       = "exec"
  command     = ["true"]
  stop_signal = "` + name + `"
}
`
		cfg, _, diags := hclconfig.Parse("server.hcl", []byte(src))
		if diags.HasErrors() {
			continue
		}
		accepted++
		if _, ok := Signal(cfg.Listeners[0].StopSignal); !ok {
			t.Errorf("stop_signal %q is accepted by the config but has no signal here", name)
		}
	}
	if accepted == 0 {
		t.Fatal("the config accepted no stop_signal at all: the test config is wrong")
	}
	t.Logf("%d stop signals accepted", accepted)
}
