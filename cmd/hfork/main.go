// Command hfork is a pre-fork server configured by one HCL file.
package main

import (
	"os"

	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker"
)

func main() {
	switch {
	case os.Getenv(wire.EnvWorker) == "1":
		os.Exit(worker.Main())
	case os.Getenv(wire.EnvExec) == "1":
		os.Exit(pool.ExecShim())
	}
	os.Exit(NewProgram(os.Stdout, os.Stderr).Run(os.Args))
}
