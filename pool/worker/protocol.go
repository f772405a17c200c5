package worker

import (
	"encoding/json"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// Environment variables of the worker protocol. LISTEN_FDS, LISTEN_PID,
// LISTEN_FDNAMES and NOTIFY_SOCKET are systemd's and keep their meaning.
const (
	// EnvWorker is set to "1" when hfork's own binary is started as a worker.
	EnvWorker = "HFORK_WORKER"
	// EnvControlFD names the fd of the control pipe's read end. The master
	// writes one JSON Spec line, then Command lines; EOF means the master is
	// gone and the worker must exit at once.
	EnvControlFD = "HFORK_CONTROL_FD"
)

// Signals a built-in worker understands.
//
//	SIGTERM  drain: stop accepting, finish in-flight requests, answer the
//	         next request on each keep-alive connection with
//	         "Connection: close", close idle connections, exit 0.
//	SIGINT, SIGQUIT
//	         fast: close the listeners and every connection now, exit.
//	SIGUSR1  reopen the access log file.

// Notify keys a built-in worker sends besides READY=1, STOPPING=1,
// WATCHDOG=1 and STATUS=.
const (
	// NotifyRequests carries the number of requests served so far.
	NotifyRequests = "X_HFORK_REQUESTS"
	// NotifyInflight carries the number of requests in flight.
	NotifyInflight = "X_HFORK_INFLIGHT"
	// NotifyOldestMS carries the age in milliseconds of the oldest in-flight
	// request (0 when none). Upgraded connections are not requests.
	NotifyOldestMS = "X_HFORK_OLDEST_MS"
	// NotifyOldestReq carries "METHOD PATH" of the oldest in-flight request.
	NotifyOldestReq = "X_HFORK_OLDEST_REQ"
	// NotifyRecycle=1 says the worker reached max_requests: the master starts
	// a replacement, waits for it to be ready, then drains this worker.
	NotifyRecycle = "X_HFORK_RECYCLE"

	// The metrics counters, all cumulative since the worker started:
	//
	// NotifyCodes carries answered requests by route and status class:
	// five counts (1xx to 5xx) per route in the listener's route order,
	// then five for requests no route matched, all joined by ",".
	NotifyCodes = "X_HFORK_CODES"
	// NotifyDuration carries request durations: one count per bucket of
	// DurationBuckets (not cumulative), one for longer ones, then the sum
	// of all durations in microseconds, joined by ",".
	NotifyDuration = "X_HFORK_DURATION"
	// NotifyBytes carries response body bytes sent.
	NotifyBytes = "X_HFORK_BYTES"
	// NotifyConns carries "open,idle,upgraded" connections now.
	NotifyConns = "X_HFORK_CONNS"
	// NotifyNamed names up to eight connections a drain would wait for,
	// separated by tabs: "request AGE_MS METHOD PATH" for the oldest
	// requests in flight, "upgraded AGE_MS METHOD PATH" for upgraded ones.
	NotifyNamed = "X_HFORK_NAMED"
	// NotifyDrained is sent once, when a drain ends:
	// "handed_over,requests_finished,idle_closed,cut" (see drain).
	NotifyDrained = "X_HFORK_DRAINED"
)

// DurationBuckets are the upper bounds of the request duration histogram,
// shared by workers and the master's metrics.
var DurationBuckets = []time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Spec is the first line on the control pipe: everything a worker knows.
type Spec struct {
	Listener hclconfig.Listener `json:"listener"`
	Gen      int                `json:"gen"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// LogFormat is resolved by the master: "json", "text" or "tint"
	// (coloured). Worker log lines go to stderr, which the master forwards.
	LogFormat string `json:"log_format"`
	// Certificates are a TLS listener's pairs, in the order of
	// Listener.TLS.Certificates, read by the master: a worker never
	// reads a key file.
	Certificates []CertPEM `json:"certificates,omitempty"`
}

// CertPEM is one certificate chain (leaf first) and its private key, PEM
// encoded, as the master read them from Name (the certificate's file, for
// logs).
type CertPEM struct {
	Name string `json:"name"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Command is a later line on the control pipe.
type Command struct {
	// LogLevel and LogFormat, when set, replace the current ones.
	LogLevel  string `json:"log_level,omitempty"`
	LogFormat string `json:"log_format,omitempty"`
	// Certificates, when set, replace a TLS worker's pairs: the master
	// sends them whenever its poll (every second) or a reload found
	// changed files that load.
	Certificates []CertPEM `json:"certificates,omitempty"`
	// Status is the master's view for a status route (see app.PublishStatus),
	// sent once a second to workers of listeners that have one.
	Status json.RawMessage `json:"status,omitempty"`
}
