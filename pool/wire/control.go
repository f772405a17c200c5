package wire

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/hfork/hfork/hclconfig"
)

// Spec is the first line on the control pipe: everything a built-in
// worker knows. A worker never reads the config file.
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
	// TicketSeed is the seed of a TLS listener's session ticket keys
	// (certset.TicketKeys), the same for every worker the master runs, so
	// a client resumes on whichever sibling it reaches.
	TicketSeed []byte `json:"ticket_seed,omitempty"`
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
	// HurryMS, sent to a draining worker whose generation is over
	// max_draining_generations, ends its drain early: idle connections
	// close at once, everything else after HurryMS milliseconds.
	HurryMS int64 `json:"hurry_ms,omitempty"`
	// Swap, when set, is a listener config for a built-in worker to apply
	// in place (routes, hosts, headers, access log, ...): it builds the new
	// table, switches to it between requests and answers with KeySwap
	// carrying SwapID.
	Swap   *hclconfig.Listener `json:"swap,omitempty"`
	SwapID uint64              `json:"swap_id,omitempty"`
}

// ReadSpec reads the first line of the control pipe.
func ReadSpec(r *bufio.Reader) (Spec, error) {
	var spec Spec
	line, err := r.ReadBytes('\n')
	if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
		return spec, fmt.Errorf("read spec: %w", err)
	}
	if err := json.Unmarshal(line, &spec); err != nil {
		return spec, fmt.Errorf("read spec: %w", err)
	}
	return spec, nil
}

// ReadCommands applies each later line of the control pipe until it ends,
// then calls gone: the master holds the pipe's write end for as long as it
// lives, so EOF (or any read error) means it is gone.
func ReadCommands(r *bufio.Reader, apply func(Command, error), gone func(error)) {
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var c Command
			if jerr := json.Unmarshal(line, &c); jerr != nil {
				apply(c, fmt.Errorf("control command: %w", jerr))
			} else {
				apply(c, nil)
			}
		}
		if err != nil {
			gone(err)
			return
		}
	}
}

// ErrControlFull says a worker left more than MaxControlQueue bytes unread
// beyond what its pipe holds: the line was dropped.
var ErrControlFull = errors.New("control pipe full: the worker is not reading")

// MaxControlQueue bounds the bytes a Control keeps for a worker that does
// not read (one stopped with SIGSTOP): far more than any burst of
// commands, and not unbounded memory in the master.
const MaxControlQueue = 4 << 20

// Control is the master's end of one worker's control pipe. Send queues a
// line and returns at once; one writer goroutine writes the queue in
// order, so a worker that is slow to read never stalls the master and a
// Command never overtakes the Spec.
type Control struct {
	f    *os.File
	wake chan struct{}

	mu     sync.Mutex
	queue  [][]byte
	queued int  // bytes in queue
	closed bool // Close was called: wake is closed too
	broken bool // a write failed: the worker cannot read any more
}

// NewControl takes over f, the pipe's write end, and starts its writer.
func NewControl(f *os.File) *Control {
	c := &Control{f: f, wake: make(chan struct{}, 1)}
	go c.write()
	return c
}

// Send queues v (a Spec or a Command) as one JSON line. It never blocks;
// after Close, once the pipe broke, or when MaxControlQueue bytes wait, it
// drops the line and says so.
func (c *Control) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("control send: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.broken {
		return fmt.Errorf("control send: %w", os.ErrClosed)
	}
	if c.queued+len(b)+1 > MaxControlQueue {
		return fmt.Errorf("control send: %w", ErrControlFull)
	}
	c.queue = append(c.queue, append(b, '\n'))
	c.queued += len(b) + 1
	select {
	case c.wake <- struct{}{}:
	default: // the writer is already due to look at the queue
	}
	return nil
}

// Close drops what is still queued and closes the pipe, interrupting a
// write in progress; the worker reads EOF. It never blocks.
func (c *Control) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.queue, c.queued = nil, 0
	close(c.wake)
	c.mu.Unlock()
	c.f.Close()
}

func (c *Control) write() {
	for range c.wake {
		for {
			c.mu.Lock()
			if c.closed || c.broken || len(c.queue) == 0 {
				c.mu.Unlock()
				break
			}
			b := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.queued -= len(b)
			c.mu.Unlock()
			if _, err := c.f.Write(b); err != nil {
				// The worker is gone (EPIPE) or the pipe was closed:
				// nothing later can arrive either.
				c.mu.Lock()
				c.queue, c.queued, c.broken = nil, 0, true
				c.mu.Unlock()
				break
			}
		}
	}
}
