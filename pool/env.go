package pool

import (
	"slices"
	"strings"

	"github.com/hfork/hfork/hclconfig"
	"github.com/hfork/hfork/pool/wire"
)

// passedEnv names the master's variables every worker gets: what a program
// needs to find programs, speak the operator's language and tell the time.
// Everything else in the master's environment (credentials handed to the
// service, the unit's own settings) stays with the master.
var passedEnv = []string{"PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR"}

// goRuntimeEnv is what an operator sets on the master to tune the Go
// runtime; built-in workers are the same binary and take it too (exec
// programs and the Python runner are not). HFORK_HEAP_PROFILE asks them
// for heap profiles too (package heapprof).
var goRuntimeEnv = []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK", "GOCOVERDIR", "HFORK_HEAP_PROFILE"}

// identityEnv describes the user; it is passed only when the worker runs
// as the master's user, and set from the worker's own account otherwise.
var identityEnv = []string{"HOME", "USER", "LOGNAME"}

// workerEnv is the environment a worker of l starts with, before the
// worker protocol's variables: the allowlisted part of the master's
// environment and what l's pass_env names (or, with inherit_env, all of it
// but the protocol's own variables: wire.Environ), then l's env, which
// wins. The allowlist too is applied to wire.Environ's list, so a pass_env
// naming a protocol variable cannot hand a worker its master's.
func workerEnv(l hclconfig.Listener) []string {
	if l.InheritEnv {
		return addEnv(wire.Environ(nil), l.Env)
	}
	keep := slices.Concat(passedEnv, l.PassEnv)
	if l.Class != hclconfig.ClassExec && l.App == "" {
		keep = append(keep, goRuntimeEnv...)
	}
	switched := l.User != ""
	if !switched {
		keep = append(keep, identityEnv...)
	}
	var out []string
	for _, kv := range wire.Environ(nil) {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(keep, k) || strings.HasPrefix(k, "LC_") {
			out = append(out, kv)
		}
	}
	if switched {
		if u, err := lookupUser(l.User); err == nil {
			out = append(out, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
		}
	}
	return addEnv(out, l.Env)
}

// addEnv sets every variable of env in list, replacing one already there.
func addEnv(list []string, env map[string]string) []string {
	if len(env) == 0 {
		return list
	}
	list = slices.DeleteFunc(list, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		_, set := env[k]
		return set
	})
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	return list
}
