package wire

import (
	"os"
	"slices"
	"testing"
)

func TestEnvironDropsProtocolVariables(t *testing.T) {
	in := []string{
		"PATH=/bin", "LISTEN_FDS=2", "LISTEN_PID=7", "LISTEN_FDNAMES=a:b", "NOTIFY_SOCKET=@x",
		"WATCHDOG_USEC=1", "WATCHDOG_PID=7", "HFORK_WORKER=1", "HFORK_CONTROL_FD=5", "HFORK_EXEC=1",
		"HFORK_EXEC_ARGV=[]", "HFORK_UPGRADE=1", "HFORK_UPGRADE_FD=6",
		"LISTEN_FDS_EXTRA=kept", "HFORK_OTHER=kept", "EMPTY=", "NOEQUALS",
	}
	want := []string{"PATH=/bin", "LISTEN_FDS_EXTRA=kept", "HFORK_OTHER=kept", "EMPTY=", "NOEQUALS"}
	if got := Environ(in); !slices.Equal(got, want) {
		t.Errorf("Environ =\n%q\nwant\n%q", got, want)
	}
}

func TestEnvironDefaultsToTheProcess(t *testing.T) {
	t.Setenv("HFORK_WIRE_TEST", "1")
	t.Setenv(EnvNotifySocket, "@someone")
	got := Environ(nil)
	if !slices.Contains(got, "HFORK_WIRE_TEST=1") {
		t.Error("the process's own variable is missing")
	}
	if slices.Contains(got, "NOTIFY_SOCKET=@someone") {
		t.Error("NOTIFY_SOCKET was passed on")
	}
}

func TestUnsetenv(t *testing.T) {
	t.Setenv(EnvListenFDs, "3")
	t.Setenv(EnvControlFD, "6")
	t.Setenv("HFORK_WIRE_TEST", "kept")
	Unsetenv()
	for _, k := range []string{EnvListenFDs, EnvControlFD} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%q left set", k, v)
		}
	}
	if os.Getenv("HFORK_WIRE_TEST") != "kept" {
		t.Error("a variable outside the protocol was removed")
	}
}
