package pool

import (
	"os"
	"testing"

	"github.com/hfork/hfork/pool/worker"
)

// TestMain lets the test binary be the workers the tests' pools spawn
// (the master re-executes /proc/self/exe).
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(worker.EnvWorker) == "1":
		os.Exit(worker.Main())
	case os.Getenv(EnvExec) == "1":
		os.Exit(ExecShim())
	}
	os.Exit(m.Run())
}
