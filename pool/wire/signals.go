package wire

import "syscall"

// signals is the one table of signal names hfork reads (stop_signal) and
// writes (log lines).
var signals = []struct {
	name string
	sig  syscall.Signal
}{
	{"TERM", syscall.SIGTERM}, {"INT", syscall.SIGINT}, {"QUIT", syscall.SIGQUIT}, {"HUP", syscall.SIGHUP},
	{"USR1", syscall.SIGUSR1}, {"USR2", syscall.SIGUSR2}, {"WINCH", syscall.SIGWINCH},
	{"TTIN", syscall.SIGTTIN}, {"TTOU", syscall.SIGTTOU},
}

// Signal is the signal named name ("TERM"; no "SIG" prefix).
func Signal(name string) (syscall.Signal, bool) {
	for _, s := range signals {
		if s.name == name {
			return s.sig, true
		}
	}
	return 0, false
}

// SignalName is sig's short name ("TERM"), or the runtime's description
// for a signal outside the table.
func SignalName(sig syscall.Signal) string {
	for _, s := range signals {
		if s.sig == sig {
			return s.name
		}
	}
	return sig.String()
}
