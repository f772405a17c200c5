package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker"
)

// TestMain lets the test binary be hfork: testscript runs it as the
// "hfork" command, and the master re-executes it (as /proc/self/exe) for
// workers and exec shims.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(wire.EnvWorker) == "1":
		os.Exit(worker.Main())
	case os.Getenv(wire.EnvExec) == "1":
		os.Exit(pool.ExecShim())
	case os.Getenv(envTestUpstream) != "":
		// The proxy tests start it as an upstream they can kill or stop.
		os.Exit(serveTestUpstream(os.Getenv(envTestUpstream)))
	case os.Getenv(envTestMaster) == "1":
		// The load tests start the test binary itself as the master.
		os.Exit(NewProgram(os.Stdout, os.Stderr).Run(os.Args))
	}
	testscript.Main(m, map[string]func(){
		"hfork": func() { os.Exit(NewProgram(os.Stdout, os.Stderr).Run(os.Args)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               setupScript,
		Cmds:                scriptCmds,
		Condition:           scriptCondition,
		RequireExplicitExec: true,
	})
}
