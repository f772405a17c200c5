package pool

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// Output carries what workers print to the master's log. Each worker's pipe
// has a reader goroutine that hands lines to one writer goroutine through a
// bounded queue; when the sink is slow and the queue is full, lines are
// dropped and counted rather than blocking the worker on a full pipe.
type Output struct {
	raw     io.Writer // built-in workers' lines are already formatted log records
	log     *slog.Logger
	queue   chan outLine
	dropped atomic.Int64
}

type outLine struct {
	raw      bool
	listener string
	pid      int
	stream   string
	text     string
}

// NewOutput starts the writer goroutine. raw receives built-in workers'
// lines verbatim; exec'd programs' lines become records on log.
func NewOutput(raw io.Writer, log *slog.Logger) *Output {
	o := &Output{raw: raw, log: log, queue: make(chan outLine, 4096)}
	go o.write()
	return o
}

func (o *Output) write() {
	for l := range o.queue {
		if n := o.dropped.Swap(0); n > 0 {
			o.log.Warn("worker output dropped: log sink too slow", "lines", n)
		}
		if l.raw {
			o.raw.Write([]byte(l.text + "\n"))
			continue
		}
		o.log.Info(l.text, "listener", l.listener, "pid", l.pid, "stream", l.stream)
	}
}

// tail follows one pipe until EOF. It keeps the last line for boot-failure
// reports and closes done when the pipe is drained.
type tail struct {
	mu   sync.Mutex
	last string
	done chan struct{}
}

func (o *Output) follow(r *os.File, raw bool, listener string, pid int, stream string) *tail {
	t := &tail{done: make(chan struct{})}
	go func() {
		defer close(t.done)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), 256<<10)
		for sc.Scan() {
			line := sc.Text()
			t.mu.Lock()
			t.last = line
			t.mu.Unlock()
			select {
			case o.queue <- outLine{raw: raw, listener: listener, pid: pid, stream: stream, text: line}:
			default:
				o.dropped.Add(1)
			}
		}
	}()
	return t
}

// finished reports whether the pipe reached EOF (a nil tail has nothing
// to wait for).
func (t *tail) finished() bool {
	if t == nil {
		return true
	}
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *tail) lastLine() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
