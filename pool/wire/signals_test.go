package wire

import (
	"syscall"
	"testing"
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
