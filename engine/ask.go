package engine

import (
	"errors"

	"github.com/hfork/hfork/reload"
)

// ReloadResult is what a reload answers whoever asked for it: the plan it
// applied (empty when nothing changed) or why it failed. Each asker gets
// the result of the reload that served its own request, so a later reload
// can never answer for an earlier one.
type ReloadResult struct {
	Plan string
	Err  error
}

// ReloadError is a failed reload: what the operator reads from `hfork -s
// reload` and the log. It wraps its cause, so errors.Is finds
// pool.ErrBootFailed, fs.ErrNotExist and the like.
type ReloadError struct {
	Stage string // "config", "bind", "boot"
	Err   error
}

func (e *ReloadError) Error() string { return "reload failed (" + e.Stage + "): " + e.Err.Error() }

// Unwrap is the cause.
func (e *ReloadError) Unwrap() error { return e.Err }

// reloadAsk is one request for a reload as the master's loop holds it:
// from the watcher (a file change, SIGHUP) or from the control socket,
// which waits for the result and, with receipt set, for the drain that
// follows.
type reloadAsk struct {
	reason  string
	reply   chan<- ReloadResult
	legacy  chan<- error   // a reload.Request's own Reply, if it has one
	receipt chan<- Receipt // nil unless the asker waits for the drain
	// rollback: apply the previous config (kept in memory), not the file.
	rollback bool
	// manual: an operator asked (SIGHUP, hfork -s reload), not only the
	// file watch; then the reload restarts user code (PlanOptions).
	manual bool
}

func askFromWatcher(req reload.Request) reloadAsk {
	return reloadAsk{reason: req.Reason, legacy: req.Reply, manual: req.Manual}
}

// answer gives every asker res. Reply channels have room for one value and
// nobody else writes to them, so the loop never blocks here.
func answer(asks []reloadAsk, res ReloadResult) {
	for _, a := range asks {
		if a.reply != nil {
			select {
			case a.reply <- res:
			default:
			}
		}
		if a.legacy != nil {
			select {
			case a.legacy <- res.Err:
			default:
			}
		}
	}
}

// failed is the result of a reload that failed with err.
func failed(err error) ReloadResult { return ReloadResult{Err: err} }

// errStage builds a ReloadError for stage around err.
func errStage(stage string, err error) error { return &ReloadError{Stage: stage, Err: err} }

// errText is a ReloadError whose cause is only text (rendered diagnostics).
func errText(stage, text string) error { return errStage(stage, errors.New(text)) }
