package pool

import (
	"os"
	"testing"

	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker"
)

// TestMain lets the test binary be the workers the tests' pools spawn
// (the master re-executes /proc/self/exe).
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(wire.EnvWorker) == "1":
		os.Exit(worker.Main())
	case os.Getenv(wire.EnvExec) == "1":
		os.Exit(ExecShim())
	}
	os.Exit(m.Run())
}
