package evloop

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hfork/hfork/listeners"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/h1"
	"github.com/hfork/hfork/pool/worker/internal/poll"
	"golang.org/x/sys/unix"
)

const (
	// loopTick is how often the loop looks at deadlines; it bounds how
	// late a timeout fires.
	loopTick = 50 * time.Millisecond
	// loopReadBuf is the loop's shared read buffer.
	loopReadBuf = 64 << 10
	// loopMaxOut bounds the answers the loop makes ahead of a client that
	// pipelines faster than it reads.
	loopMaxOut = 256 << 10
	// lingerTime is how long a connection closing after its answer keeps
	// reading what the client still sends, so that the kernel does not
	// reset the connection and destroy the answer (net/http waits as long).
	lingerTime = 500 * time.Millisecond
	// lingerMax bounds how long a closing connection waits for its last
	// answer to leave the send buffer, for a client that stopped reading.
	lingerMax = 30 * time.Second
	// loopEvents is how many events one epoll_wait returns at most.
	loopEvents = 256
	// loopHot is how long after its last event the loop counts as busy
	// (see Run).
	loopHot = time.Second
)

// MaxHead is the longest head the loop parses itself: a longer one goes
// to net/http, which applies max_header_bytes.
const MaxHead = 8 << 10

// Host is the worker the loop serves in: it owns the connection slots
// (worker_connections), counts requests, and serves what the loop hands
// over with net/http.
type Host interface {
	// Acquire takes a connection slot if one is free, without waiting.
	Acquire() bool
	// Release gives a slot back.
	Release()
	// Route is the route a request goes to by its Host header and path,
	// as the host counts them; the loop keeps it with a forwarded request.
	Route(host, path string) int
	// Served counts one request answered: its route, status, body bytes,
	// and when its head was read (the loop's clock, Unix nanoseconds).
	Served(route, status int, bytes int64, began int64)
	// AdoptTLS takes a TLS connection for net/http's HTTP/2 right after
	// its handshake, as Adopt does; c is the socket under the tls.Conn
	// (reached through its NetConn's Underlying), and the returned conn
	// is what the tls.Conn goes on over.
	AdoptTLS(c net.Conn, ip netip.Addr) net.Conn
	// Adopt takes a connection handed over to net/http, with its slot
	// and the address Admit counted it under (invalid: none), and returns
	// the conn net/http is to serve.
	Adopt(c net.Conn, ip netip.Addr) net.Conn
	// Evicted counts idle connections closed to make room.
	Evicted(now time.Time)
	// Admit counts a connection from ip against max_connections_per_ip,
	// or reports false when ip holds its share; Leave gives it back. The
	// loop calls them only with Config.PerIP, and a handed-over
	// connection takes its count with it, as it takes its slot.
	Admit(ip netip.Addr) bool
	Leave(ip netip.Addr)
	// DrainIdleClosed counts an idle connection a drain closed.
	DrainIdleClosed()
}

// Config is what the loop needs of its listener's config, resolved.
type Config struct {
	Listeners []net.Listener // the loop accepts on its own dups of these
	Fast      app.FastServer
	Access    *app.AccessLog // nil: no access log
	Trust     *app.Trust     // trusted_proxies; nil: none
	// ProxyProtocol: each connection begins with a PROXY header.
	ProxyProtocol bool
	Log           *slog.Logger
	// ReadHeaderTimeout is the time for a head to arrive (the shorter of
	// read_header_timeout and read_timeout); it must be positive.
	ReadHeaderTimeout time.Duration
	Idle              time.Duration // keepalive; 0: none
	WriteTimeout      time.Duration // 0: none
	Deadline          time.Duration // a proxied request's timeout; 0: none
	Grace             time.Duration // a drain spares idle connections this long
	MaxHeaderBytes    int           // 0: the loop's own bound
	KeepAlive         bool          // connections stay open between requests
	Evict             bool          // at worker_connections, close the oldest reusable connections
	PerIP             bool          // max_connections_per_ip is set: ask Host.Admit
	// TLS, when set, makes every connection a TLS one with this config:
	// the loop serves HTTP/1.1 over it and hands "h2" ones to net/http.
	TLS *tls.Config
	// Siblings says other workers accept on the same sockets; then the
	// loop hands the next connection to them after each batch (see
	// accept).
	Siblings bool
}

// Loop is one worker's event loop. Run serves; Drain and Stop may be
// called from any goroutine.
type Loop struct {
	cfg    Config
	host   Host
	log    *slog.Logger
	fast   app.FastServer
	access *app.AccessLog
	poll   *poll.Poller
	lfds   []int
	list   []*conn // every connection, for the sweep
	// rqHead and rqTail: the reusable queue, oldest first (reuse.go).
	rqHead, rqTail *conn
	free           []*conn    // closed ones, for reuse (see newConn)
	byFD           []*conn    // index by fd
	rbuf           []byte     // shared read buffer
	tbuf           []byte     // plaintext opened from TLS records (tls.go)
	fbuf           []byte     // a file's chunk to seal (tls.go)
	wbuf           []byte     // answers being built
	outs           outPool    // connections' own answer buffers (outbuf.go)
	req            h1.Request // the request being answered
	resp           app.FastResponse
	now            int64
	date           []byte // "Date: ...\r\n" for dateAt
	dateAt         int64

	rht, idle, wto int64 // read_header (or read), keepalive, write timeouts in nanos; 0 none
	maxHead        int   // the longest head the loop parses
	keepAlive      bool

	accepting bool // listening fds are in the epoll set
	// acceptBackoff and acceptWarned pace accept after a failure.
	acceptBackoff time.Duration
	acceptWarned  int64
	resumeAt      int64 // unix nanos: accept again after a failure or a balancing pause
	paused        bool  // at worker_connections: not accepting until a slot frees
	draining      bool
	drainStart    int64
	pastGrace     bool  // the drain passed graceful_timeout (progress.go)
	lastSample    int64 // the drain's last progress reading
	nextSweep     int64
	lastBusy      int64 // when epoll_wait last returned events

	mu       sync.Mutex
	cmds     []loopCmd
	ended    bool          // Run returned (under mu)
	open     atomic.Int64  // connections the loop holds
	cut      atomic.Int64  // closed past graceful_timeout with something unfinished
	moving   atomic.Int64  // answers still moving at graceful_timeout
	lateCut  atomic.Int64  // of those, closed when they stalled
	busyN    atomic.Int64  // connections answering at the drain's last look
	done     chan struct{} // closed when Run returns
	handoffs *handoffQueue
	hsPool   hsPool // idle handshake coroutines (tlshs.go)

	// The routes' table (swap.go): tab is the loop's own, next what Swap
	// stored.
	tab  *Table
	next atomic.Pointer[Table]
	// swaps are the tables Swap stored since the loop last looked, oldest
	// first (by mu): the loop installs the last and lets go of the others,
	// which two swaps in quick succession would otherwise leave held.
	swaps []*Table

	// The proxy's side (see upstream.go and exchange.go).
	ups        []*upConn
	upByFD     []*upConn
	upIdle     [][]*upConn // by upstream.Member.ID, most recently used last
	exFree     []*exchange // finished exchanges, for reuse
	needRemote bool        // the client address is needed (access log, X-Forwarded-For)
	outOfFDs   bool        // the last dial found no file descriptor (upstream.go)
	fds        app.FDAlarm
	dialErr    error // why the last dial failed at once

	// The request's client (see who): its "ip:port" for the log and
	// ip_hash, the X-Forwarded-For a proxy sends with trusted_proxies,
	// and its X-Request-ID.
	client   string
	chain    string
	useChain bool
	reqID    []byte

	// upKeep, upExtra and upBurst are upIdleMax, upIdleExtra (in nanos)
	// and upIdleBurst, which tests lower.
	upKeep, upBurst int
	upExtra         int64
}

type loopCmd int

const (
	cmdDrain     loopCmd = iota + 1 // stop accepting, close idle connections after the grace, exit when empty
	cmdPastGrace                    // graceful_timeout passed: close all but the answers still moving
	cmdHurry                        // over max_draining_generations: close idle connections at once
	cmdStop                         // close everything and exit
)

// dupListeners dups the listening fds of lns for the loop's own use.
func dupListeners(lns []net.Listener) ([]int, error) {
	var fds []int
	for _, ln := range lns {
		nfd, err := listeners.DupFD(ln)
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("dup listener %s: %w", ln.Addr(), err)
		}
		fds = append(fds, nfd)
	}
	return fds, nil
}

// New makes a loop that accepts on cfg.Listeners once Run starts.
func New(cfg Config, host Host) (*Loop, error) {
	if cfg.ReadHeaderTimeout <= 0 {
		return nil, fmt.Errorf("event loop: read header timeout %v", cfg.ReadHeaderTimeout)
	}
	lfds, err := dupListeners(cfg.Listeners)
	if err != nil {
		return nil, err
	}
	l := &Loop{
		cfg: cfg, host: host, log: cfg.Log, fast: cfg.Fast, access: cfg.Access, lfds: lfds,
		rbuf: make([]byte, loopReadBuf), wbuf: make([]byte, 0, 16<<10),
		keepAlive: cfg.KeepAlive,
		done:      make(chan struct{}),
		handoffs:  newHandoffQueue(),
		upKeep:    upIdleMax, upBurst: upIdleBurst, upExtra: int64(upIdleExtra),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.hsPool.idleFor = int64(loopHot)
	l.resp.Reset()
	l.tab = &Table{Fast: cfg.Fast, Access: cfg.Access, Deadline: cfg.Deadline}
	l.next.Store(l.tab)
	l.needRemote = cfg.Access != nil || len(cfg.Fast.FastProxies()) > 0
	l.rht, l.idle, l.wto = int64(cfg.ReadHeaderTimeout), int64(cfg.Idle), int64(cfg.WriteTimeout)
	l.maxHead = MaxHead
	if m := cfg.MaxHeaderBytes; m > 0 && m < l.maxHead {
		l.maxHead = m
	}
	closeAll := func() {
		for _, fd := range lfds {
			unix.Close(fd)
		}
	}
	if l.poll, err = poll.New(); err != nil {
		closeAll()
		return nil, err
	}
	if err := l.startAccepting(); err != nil {
		closeAll()
		l.poll.Close()
		return nil, err
	}
	return l, nil
}

// Drain makes the loop stop accepting, close idle connections after the
// grace, and end once it holds none.
func (l *Loop) Drain() { l.command(cmdDrain) }

// Stop makes the loop close every connection and end.
func (l *Loop) Stop() { l.command(cmdStop) }

// Done is closed when Run has returned.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Open is how many connections the loop holds.
func (l *Loop) Open() int64 { return l.open.Load() }

// Handoffs is the listener net/http serves: the connections the loop
// hands over, under addr. Its Accept ends once Run has returned.
func (l *Loop) Handoffs(addr net.Addr) net.Listener {
	return handoffListener{q: l.handoffs, addr: addr}
}

// command hands cmd to the loop and wakes it.
// Once the loop has ended it takes no command: its wake fd is closed, and
// the number may already name another file.
func (l *Loop) command(cmd loopCmd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.cmds = append(l.cmds, cmd)
	l.poll.Wake()
}

// Run serves until a command ends it. It returns an error only when epoll
// itself fails.
//
// The loop wants a thread of its own and a second P for net/http and the
// worker's other goroutines: with GOMAXPROCS=1 every epoll_wait that holds
// the P (see poll.Wait) stalls them until it returns. So Run raises
// GOMAXPROCS to 2, unless the operator set GOMAXPROCS, which it honours.
func (l *Loop) Run() error {
	runtime.LockOSThread()
	if env := os.Getenv("GOMAXPROCS"); env != "" {
		l.log.Debug("event loop keeps GOMAXPROCS from the environment", "gomaxprocs", runtime.GOMAXPROCS(0))
	} else if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
		l.log.Debug("event loop raised GOMAXPROCS", "gomaxprocs", 2)
	}
	defer close(l.done)
	defer l.handoffs.close()
	defer l.log.Debug("event loop ended")
	defer func() {
		for len(l.ups) > 0 {
			l.dropUp(l.ups[len(l.ups)-1])
		}
		for _, fd := range l.lfds {
			unix.Close(fd)
		}
		l.trimCoros(true)
		l.mu.Lock()
		l.ended = true
		l.poll.Close()
		l.mu.Unlock()
	}()
	events := make([]poll.Event, loopEvents)
	for {
		// Idle, the loop still wakes once a second: a safety net for
		// anything that fails to wake it, at no cost worth counting.
		timeout := time.Second
		if len(l.list) > 0 || l.paused || l.draining {
			timeout = loopTick
		}
		if l.resumeAt != 0 {
			if now := time.Now().UnixNano(); now >= l.resumeAt {
				l.resumeAt = 0
				if !l.paused && !l.draining {
					if err := l.startAccepting(); err != nil {
						l.closeEverything()
						return err
					}
				}
			} else {
				timeout = time.Duration(max(l.resumeAt-now, int64(time.Millisecond)))
			}
		}
		// While the loop has been busy lately, it waits holding its P
		// (see poll.Wait); an idle loop, loopHot after its last event,
		// waits through the scheduler.
		n, err := l.poll.Wait(events, timeout, l.now-l.lastBusy < int64(loopHot))
		if err != nil {
			l.closeEverything()
			return err
		}
		l.now = time.Now().UnixNano()
		if n > 0 {
			l.lastBusy = l.now
		}
		for i := 0; i < n; i++ {
			ev := &events[i]
			fd := int(ev.Fd)
			if l.poll.IsWake(fd) {
				if l.commands() {
					return nil
				}
				continue
			}
			if l.isListener(fd) {
				l.accept(fd)
				continue
			}
			c := l.conn(fd)
			if c == nil {
				if u := l.upConnOf(fd); u != nil {
					l.upEvent(u, ev.Events)
				}
				continue
			}
			if c.px != nil && !c.writing {
				l.readDuringProxy(c)
				continue
			}
			if c.writing {
				if ev.Events&(poll.Out|poll.Err|poll.Hup) != 0 {
					l.flush(c)
				}
				continue
			}
			l.readable(c)
		}
		if l.now >= l.nextSweep {
			l.nextSweep = l.now + int64(loopTick)
			l.sweep()
			l.trimCoros(false)
			l.sweepUpstreams()
			l.sampleDrain()
		}
		if l.draining && len(l.list) == 0 {
			return nil
		}
	}
}

// commands runs the queued commands; it reports whether the loop ends.
func (l *Loop) commands() bool {
	l.poll.Woken()
	l.syncTable()
	l.mu.Lock()
	cmds := l.cmds
	l.cmds = nil
	l.mu.Unlock()
	for _, cmd := range cmds {
		switch cmd {
		case cmdDrain:
			if !l.draining {
				l.draining, l.drainStart = true, l.now
				l.stopAccepting()
				l.paused = false
				for _, fd := range l.lfds {
					unix.Close(fd)
				}
				l.lfds = nil
				l.log.Debug("event loop draining", "conns", len(l.list))
			}
		case cmdPastGrace:
			l.pastGraceNow()
		case cmdHurry:
			l.cfg.Grace = 0
		case cmdStop:
			l.closeEverything()
			return true
		}
	}
	return false
}

// closeEverything closes every connection now.
func (l *Loop) closeEverything() {
	l.stopAccepting()
	for len(l.list) > 0 {
		l.close(l.list[len(l.list)-1])
	}
}

// dateLine is the Date header of this second.
func (l *Loop) dateLine() []byte {
	if sec := l.now / int64(time.Second); sec != l.dateAt || l.date == nil {
		l.dateAt = sec
		l.date = h1.AppendDate(l.date[:0], sec)
	}
	return l.date
}
