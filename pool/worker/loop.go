package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfork/hfork/listeners"
	"github.com/hfork/hfork/pool/worker/app"
	"github.com/hfork/hfork/pool/worker/internal/rawsys"
	"golang.org/x/sys/unix"
)

// The event loop serves the async class's plain-HTTP listeners the way
// nginx does: one thread per worker waits in epoll_wait on the listening
// sockets and every connection, reads what is ready, answers every
// complete request it holds with one write, and goes back to waiting. Per
// request that is one read and one write, where net/http spends a
// goroutine wake-up and a third read that finds nothing.
//
// It answers GET and HEAD requests for respond, static and redirect
// routes, and forwards those for proxy routes to IP upstreams
// (app.FastServer, loopproxy.go). The first request it does not answer
// itself, a body, an upgrade, a Range, a malformed line, hands the
// connection to net/http with the bytes read so far (handoff): net/http
// serves it from then on, exactly as it serves a connection it accepted.
// So the loop need not implement all of HTTP/1.1 to keep all of it.
//
// What the loop keeps of net/http's contract, for the requests it
// answers: keep-alive (HTTP/1.1, and HTTP/1.0 with "Connection:
// keep-alive"), pipelining (answers in order, in one write), "Connection:
// close", read_header_timeout (and read_timeout, if shorter) for a head
// to arrive, keepalive for an idle connection, write_timeout for an
// answer to leave, closing without losing the answer (shutdown, then read
// until the client closes: lingerTime, longer while the answer is still
// in the send buffer, up to lingerMax), worker_connections with eviction,
// max_requests, the access log, and the drain (see drain).

const (
	// loopTick is how often the loop looks at deadlines; it bounds how
	// late a timeout fires.
	loopTick = 50 * time.Millisecond
	// loopReadBuf is the loop's shared read buffer; loopMaxHead the
	// longest head the loop parses itself: a longer one goes to net/http,
	// which applies max_header_bytes.
	loopReadBuf = 64 << 10
	loopMaxHead = 8 << 10
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
	// (see run).
	loopHot = time.Second
)

// connection states in the loop
const (
	lcIdle    = iota // waiting for a request (or accepted, silent)
	lcReading        // part of a head arrived
	lcWriting        // an answer is waiting for the socket
	lcLinger         // answered and shut down; reading until the client closes
	lcProxy          // waiting for an upstream's answer
)

type loopConn struct {
	fd     int
	state  int
	remote string // "ip:port", filled only when there is an access log
	in     []byte // bytes of requests not yet answered
	out    []byte // answer bytes not yet written
	file   int    // a file being sent after out, or -1
	fileAt int64
	fileTo int64
	// closeAfter: close once out and file are written.
	closeAfter bool
	// since is when the connection became idle (or was accepted); the
	// drain and eviction measure quiet from it.
	since    int64
	deadline int64 // unix nanos; 0 is none
	headAt   int64 // when the head of the request being answered was read
	writing  bool  // registered for EPOLLOUT instead of EPOLLIN
	fresh    bool  // accepted, no request answered yet
	// handoff: once out is written, net/http gets the connection and in.
	handoff bool
	// waiting: requests in in wait for a file or a proxied answer.
	waiting bool
	// muted: epoll reports nothing for it (a proxied answer is coming).
	muted bool
	px    *proxyExchange // the proxied request in progress
	pxUp  *upConn        // its upstream connection
	pxv   proxyExchange  // px's storage, reused
	slot  int            // index in loop.list
}

// loop is one worker's event loop.
type loop struct {
	w      *worker
	fast   app.FastServer
	access *app.AccessLog
	epfd   int
	wakefd int // eventfd: another goroutine has a command
	lfds   []int
	list   []*loopConn // every connection, for the sweep
	free   []*loopConn // closed ones, for reuse (see newConn)
	byFD   []*loopConn // index by fd
	rbuf   []byte      // shared read buffer
	wbuf   []byte      // answers being built
	req    h1Request   // the request being answered
	resp   app.FastResponse
	now    int64
	date   []byte // "Date: ...\r\n" for dateSec
	dateAt int64

	rht, idle, wto int64 // read_header (or read), keepalive, write timeouts in nanos; 0 none
	maxHead        int   // the longest head the loop parses
	keepAlive      bool

	accepting bool // listening fds are in the epoll set
	// acceptBackoff and acceptWarned pace accept after a failure.
	acceptBackoff time.Duration
	acceptWarned  int64
	resumeAt      int64 // unix nanos: accept again after the balancing pause
	paused        bool  // at worker_connections: not accepting until a slot frees
	draining      bool
	drainStart    int64
	nextSweep     int64
	lastBusy      int64 // when epoll_wait last returned events

	mu       sync.Mutex
	cmds     []loopCmd
	ended    bool          // run returned (under mu)
	open     atomic.Int64  // connections the loop holds
	done     chan struct{} // closed when run returns
	handoffs *handoffQueue

	// The proxy's upstream connections (see loopproxy.go).
	ups        []*upConn
	upByFD     []*upConn
	upIdle     [][]*upConn // by FastUpstream.ID, most recently used last
	needRemote bool        // the client address is needed (access log, X-Forwarded-For)
}

type loopCmd int

const (
	cmdDrain loopCmd = iota + 1 // stop accepting, close idle connections after the grace, exit when empty
	cmdStop                     // close everything and exit
)

// loopFDs dups the listening fds of lns for the loop's own use.
func loopFDs(lns []*gatedListener) ([]int, error) {
	var fds []int
	for _, l := range lns {
		nfd, err := listeners.DupFD(l.Listener)
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("dup listener %s: %w", l.Addr(), err)
		}
		fds = append(fds, nfd)
	}
	return fds, nil
}

func newLoop(w *worker, fast app.FastServer, access *app.AccessLog) (*loop, error) {
	lfds, err := loopFDs(w.lns)
	if err != nil {
		return nil, err
	}
	l := &loop{
		w: w, fast: fast, access: access, lfds: lfds,
		rbuf: make([]byte, loopReadBuf), wbuf: make([]byte, 0, 16<<10),
		keepAlive: w.limits.keepAlive,
		done:      make(chan struct{}),
		handoffs:  newHandoffQueue(),
	}
	l.resp.Reset()
	l.needRemote = access != nil || len(fast.FastUpstreams()) > 0
	rht := w.cfg.ReadHeaderTimeout
	if rht <= 0 {
		rht = fallbackReadHeaderTimeout
	}
	if rt := w.cfg.ReadTimeout; rt > 0 && rt < rht {
		rht = rt
	}
	l.rht, l.idle, l.wto = int64(rht), int64(w.limits.idle), int64(w.cfg.WriteTimeout)
	l.maxHead = loopMaxHead
	if m := w.cfg.MaxHeaderBytes; m > 0 && m < l.maxHead {
		l.maxHead = m
	}
	closeAll := func() {
		for _, fd := range lfds {
			unix.Close(fd)
		}
	}
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		closeAll()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		closeAll()
		unix.Close(l.epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	err = rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.wakefd)})
	if err == nil {
		err = l.startAccepting()
	}
	if err != nil {
		closeAll()
		unix.Close(l.wakefd)
		unix.Close(l.epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return l, nil
}

// startAccepting puts the listening fds in the epoll set. EPOLLEXCLUSIVE
// wakes one waiting worker per new connection instead of all of them.
func (l *loop) startAccepting() error {
	if l.accepting {
		return nil
	}
	for _, fd := range l.lfds {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(fd)}
		if err := rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fmt.Errorf("epoll_ctl listener: %w", err)
		}
	}
	l.accepting = true
	return nil
}

func (l *loop) stopAccepting() {
	if !l.accepting {
		return
	}
	for _, fd := range l.lfds {
		rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	l.accepting = false
}

// command hands cmd to the loop and wakes it.
// Once the loop has ended it takes no command: its eventfd is closed, and
// the number may already name another file.
func (l *loop) command(cmd loopCmd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.cmds = append(l.cmds, cmd)
	var one = [8]byte{1}
	unix.Write(l.wakefd, one[:])
}

// run serves until a command ends it. It returns an error only when epoll
// itself fails.
func (l *loop) run() error {
	runtime.LockOSThread()
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	defer close(l.done)
	defer l.handoffs.close()
	defer func() {
		for len(l.ups) > 0 {
			l.dropUp(l.ups[len(l.ups)-1])
		}
		for _, fd := range l.lfds {
			unix.Close(fd)
		}
		l.mu.Lock()
		l.ended = true
		unix.Close(l.wakefd)
		l.mu.Unlock()
		unix.Close(l.epfd)
	}()
	events := make([]unix.EpollEvent, loopEvents)
	for {
		// Idle, the loop still wakes once a second: a safety net for
		// anything that fails to wake it, at no cost worth counting.
		timeout := int(time.Second / time.Millisecond)
		if len(l.list) > 0 || l.paused || l.draining {
			timeout = int(loopTick / time.Millisecond)
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
				timeout = int(max((l.resumeAt-now)/int64(time.Millisecond), 1))
			}
		}
		// Under load events are ready at once: ask without a wait first.
		// Then, while the loop has been busy lately, it waits holding its
		// P (see rawsys): a blocking syscall through the scheduler costs a
		// thread hand-off whenever it waits more than 20µs, a third of a
		// request's CPU at nginx's pace. Such a wait is cut at 10ms, about
		// when the runtime would interrupt it to preempt the goroutine
		// anyway (see EINTR below); an idle loop, one second after its
		// last event, waits through the scheduler instead.
		n, err := rawsys.EpollPoll(l.epfd, events)
		if err == nil && n == 0 && timeout != 0 {
			if l.now-l.lastBusy < int64(loopHot) {
				n, err = rawsys.EpollWait(l.epfd, events, min(timeout, 10))
			} else {
				n, err = unix.EpollWait(l.epfd, events, timeout)
			}
		}
		if err == unix.EINTR {
			// The runtime interrupts a wait with a signal when it needs
			// this goroutine to stop (for a collection, or to run
			// others): yield, or it never gets to.
			runtime.Gosched()
			n, err = 0, nil
		}
		if err != nil {
			l.closeEverything()
			return fmt.Errorf("epoll_wait: %w", err)
		}
		l.now = time.Now().UnixNano()
		if n > 0 {
			l.lastBusy = l.now
		}
		for i := 0; i < n; i++ {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == l.wakefd {
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
				if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
					l.flush(c)
				}
				continue
			}
			l.readable(c)
		}
		if l.now >= l.nextSweep {
			l.nextSweep = l.now + int64(loopTick)
			l.sweep()
			l.sweepUpstreams()
		}
		if l.draining && len(l.list) == 0 {
			return nil
		}
	}
}

func (l *loop) isListener(fd int) bool {
	for _, lfd := range l.lfds {
		if fd == lfd {
			return true
		}
	}
	return false
}

func (l *loop) conn(fd int) *loopConn {
	if fd < len(l.byFD) {
		return l.byFD[fd]
	}
	return nil
}

// commands runs the queued commands; it reports whether the loop ends.
func (l *loop) commands() bool {
	var buf [8]byte
	unix.Read(l.wakefd, buf[:])
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
			}
		case cmdStop:
			l.closeEverything()
			return true
		}
	}
	return false
}

// closeEverything closes every connection now.
func (l *loop) closeEverything() {
	l.stopAccepting()
	for len(l.list) > 0 {
		l.close(l.list[len(l.list)-1])
	}
}

// accept takes one connection: accepting one per wake-up leaves the
// others in the queue to sibling workers that are less busy.
func (l *loop) accept(lfd int) {
	if l.w.connSem != nil {
		select {
		case l.w.connSem <- struct{}{}:
		default:
			l.stopAccepting()
			l.paused = true
			return
		}
	}
	nfd, sa, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		l.w.release()
		if err != unix.EAGAIN && err != unix.ECONNABORTED && err != unix.EINTR {
			// Out of fds or memory: the socket stays readable, so back off
			// (5ms doubling to 1s, as net/http does) instead of spinning.
			l.acceptBackoff = min(max(2*l.acceptBackoff, 5*time.Millisecond), time.Second)
			l.stopAccepting()
			l.resumeAt = l.now + int64(l.acceptBackoff)
			if l.now-l.acceptWarned >= int64(time.Second) {
				l.acceptWarned = l.now
				l.w.log.Warn("accept failed; retrying", "err", err, "retry_in", l.acceptBackoff.String())
			}
		}
		return
	}
	l.acceptBackoff = 0
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		// Inherited from hfork's own listening sockets, but not from one
		// handed over by systemd: an answer's head and its file must not
		// wait for the client's delayed ACK (Go's net package does this
		// for every connection too).
		unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	c := l.newConn()
	c.fd, c.since, c.deadline, c.fresh = nfd, l.now, l.now+l.rht, true
	if l.needRemote {
		c.remote = sockaddrString(sa)
	}
	if err := rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, nfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(nfd)}); err != nil {
		unix.Close(nfd)
		l.w.release()
		l.w.log.Warn("epoll_ctl failed", "err", err)
		return
	}
	for nfd >= len(l.byFD) {
		l.byFD = append(l.byFD, make([]*loopConn, len(l.byFD)+64)...)
	}
	l.byFD[nfd] = c
	c.slot = len(l.list)
	l.list = append(l.list, c)
	n := l.open.Add(1)
	if l.w.siblings && n > 1 {
		// Accept balancing (see acceptPause): a worker that holds
		// connections leaves the next one to a less busy sibling for a
		// moment, or a burst of new clients would all land on whichever
		// worker woke first.
		l.stopAccepting()
		l.resumeAt = l.now + min(n*int64(acceptPause), int64(acceptPauseMax))
	}
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	return ""
}

// forgetConn removes c from the loop's tables; the fd stays open.
func (l *loop) forgetConn(c *loopConn) {
	rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	last := l.list[len(l.list)-1]
	l.list[c.slot] = last
	last.slot = c.slot
	l.list[len(l.list)-1] = nil
	l.list = l.list[:len(l.list)-1]
	l.byFD[c.fd] = nil
	if c.file >= 0 {
		rawsys.Close(c.file)
		c.file = -1
	}
	if c.pxUp != nil {
		l.dropUp(c.pxUp)
	}
	c.px, c.pxUp = nil, nil
	l.open.Add(-1)
}

// close closes c and gives its slot back.
func (l *loop) close(c *loopConn) {
	l.forgetConn(c)
	rawsys.Close(c.fd)
	l.w.release()
	l.recycle(c)
}

// loopFree bounds the closed connections kept for reuse.
const loopFree = 256

// newConn returns a connection record, a reused one if there is one:
// clients that connect for every request would otherwise make garbage at
// their pace, and the heap grows to the collector's first target.
func (l *loop) newConn() *loopConn {
	if n := len(l.free); n > 0 {
		c := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return c
	}
	return &loopConn{file: -1}
}

// recycle keeps a closed connection's record, and its request buffer
// for the proxy, for the next accept.
func (l *loop) recycle(c *loopConn) {
	if len(l.free) >= loopFree {
		return
	}
	req := c.pxv.req[:0]
	*c = loopConn{file: -1}
	c.pxv.req = req
	l.free = append(l.free, c)
}

// readable reads what arrived on c and answers every complete request.
func (l *loop) readable(c *loopConn) {
	if c.state == lcLinger {
		l.discard(c)
		return
	}
	var data []byte
	for {
		dst := l.rbuf
		if len(c.in) > 0 {
			// A partial head waits: read after it, within loopMaxHead.
			if cap(c.in)-len(c.in) < 2048 {
				c.in = append(c.in, make([]byte, 4096)...)[:len(c.in)]
			}
			dst = c.in[len(c.in):cap(c.in)]
		}
		n, err := rawsys.Read(c.fd, dst)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil || n == 0 {
			// The client closed or the connection broke; a partial
			// request is abandoned as net/http abandons it.
			l.close(c)
			return
		}
		if len(c.in) > 0 {
			c.in = c.in[:len(c.in)+n]
			data = c.in
		} else {
			data = dst[:n]
		}
		break
	}
	if c.state == lcIdle {
		// A head is due read_header_timeout after its first byte, or for
		// a new connection after the accept, as in net/http.
		c.state = lcReading
		if !c.fresh {
			c.deadline = l.now + l.rht
		}
	}
	l.serve(c, data)
}

// serve answers the complete requests at the start of data, then keeps
// what is left for the next read.
func (l *loop) serve(c *loopConn, data []byte) {
	owned := len(c.in) > 0 // data is c.in, not the shared buffer
	out := l.wbuf[:0]
	handoff := false
	for len(data) > 0 && !c.closeAfter {
		n, res := parseH1(data, &l.req)
		switch {
		case res == parseMore && len(data) < l.maxHead:
			break
		case res == parseMore, res == parseOK && n > l.maxHead:
			// A long head is net/http's: it applies max_header_bytes.
			res = parseNotFast
		}
		if res == parseMore {
			break
		}
		if res == parseNotFast {
			handoff = true
			break
		}
		c.headAt = l.now
		l.resp.Reset()
		var start time.Time
		if l.access != nil {
			start = l.access.Now()
		}
		ok := l.fast.ServeFast(&l.req.FastRequest, &l.resp)
		if !ok {
			handoff = true
			break
		}
		c.fresh = false
		if l.resp.Upstream != nil {
			c.closeAfter = l.req.closeReq || !l.keepAlive || l.draining
			c.out = append(c.out[:0], out...)
			l.wbuf = out[:0]
			ex := l.newExchange(c, l.resp.Upstream, data[:n], start)
			data = data[n:]
			if c.closeAfter {
				data = nil
			}
			c.waiting = len(data) > 0
			keepRest(c, data, owned)
			l.startProxy(ex)
			if c.px == ex {
				l.flushProxy(c)
			}
			return
		}
		out = l.answer(c, out)
		if l.access != nil {
			l.log(c, start)
		}
		l.w.servedFast(&l.req.FastRequest, &l.resp, c.headAt)
		data = data[n:]
		if c.file >= 0 || len(out) >= loopMaxOut {
			// The file goes out before any later answer; and answers to a
			// flood of pipelined requests are made as the client takes
			// them, not all at once.
			break
		}
	}
	l.wbuf = out[:0]
	if c.closeAfter {
		data = nil
	}
	c.waiting = len(data) > 0 && !handoff && (c.file >= 0 || len(out) >= loopMaxOut)
	keepRest(c, data, owned)
	if handoff {
		if len(out) == 0 {
			l.handoff(c, c.in)
			return
		}
		// Answers to earlier pipelined requests go first; flush hands
		// the connection over once they are out.
		c.handoff = true
	}
	if len(out) == 0 && c.file < 0 {
		// Only part of a head so far: its deadline runs on.
		return
	}
	c.out = append(c.out[:0], out...)
	l.flush(c)
}

// keepRest keeps data, the bytes after the requests answered, in c.in;
// owned says data lies in c.in already.
func keepRest(c *loopConn, data []byte, owned bool) {
	switch {
	case len(data) == 0:
		c.in = nil // idle connections hold no buffer
	case owned:
		c.in = c.in[:copy(c.in, data)]
	default:
		c.in = append(c.in[:0], data...)
	}
}

// answer appends the response in l.resp to out, and notes a file to send.
// The framing follows net/http's: an HTTP/1.0 request gets an HTTP/1.0
// status line, "Connection: keep-alive" when it asked for it, and no
// "Connection: close" when it did not; a drain says "Connection: close"
// to every request, as the worker's handler does.
func (l *loop) answer(c *loopConn, out []byte) []byte {
	r := &l.req
	c.closeAfter = r.closeReq || !l.keepAlive || l.draining
	if r.minor == 0 {
		out = append(out, "HTTP/1.0"...)
		out = append(out, l.resp.Head[len("HTTP/1.1"):]...)
	} else {
		out = append(out, l.resp.Head...)
	}
	out = append(out, l.dateLine()...)
	switch {
	case l.draining || c.closeAfter && r.minor == 1:
		out = append(out, "Connection: close\r\n"...)
	case !c.closeAfter && r.minor == 0:
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	out = append(out, "\r\n"...)
	head := r.Method == "HEAD"
	if l.resp.FileFD >= 0 {
		if head || l.resp.FileSize == 0 {
			rawsys.Close(l.resp.FileFD)
		} else {
			c.file, c.fileAt, c.fileTo = l.resp.FileFD, 0, l.resp.FileSize
		}
	} else if !head {
		out = append(out, l.resp.Body...)
	}
	return out
}

func (l *loop) log(c *loopConn, start time.Time) {
	r := &l.req
	var bytes int64
	if r.Method != "HEAD" {
		bytes = l.resp.BodyLen()
	}
	l.access.Log(&app.Entry{
		Remote: c.remote, Method: r.Method, RequestURI: r.target, Path: r.Path,
		RawQuery: r.Query, Proto: r.proto(), Host: r.host, Referer: r.referer,
		UserAgent: r.userAgent, Status: l.resp.Status, Bytes: bytes,
		Start: start, End: l.access.Now(),
	})
}

// dateLine is the Date header of this second.
func (l *loop) dateLine() []byte {
	if sec := l.now / int64(time.Second); sec != l.dateAt || l.date == nil {
		l.dateAt = sec
		l.date = append(l.date[:0], "Date: "...)
		l.date = time.Unix(sec, 0).UTC().AppendFormat(l.date, "Mon, 02 Jan 2006 15:04:05 GMT")
		l.date = append(l.date, "\r\n"...)
	}
	return l.date
}

// flush writes what c has to send; what the socket does not take waits
// for EPOLLOUT. Once all is out, c closes or waits for its next request.
func (l *loop) flush(c *loopConn) {
	for len(c.out) > 0 {
		// No MSG_MORE before a file: corking the head until sendfile's
		// pages join it cost half again as much CPU per 100 KiB file.
		n, err := rawsys.Send(c.fd, c.out, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.waitWritable(c)
			return
		}
		if err != nil {
			l.close(c)
			return
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	for c.file >= 0 && c.fileAt < c.fileTo {
		n, err := rawsys.Sendfile(c.fd, c.file, &c.fileAt, int(min(c.fileTo-c.fileAt, 1<<30)))
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.waitWritable(c)
			return
		}
		if err != nil || n == 0 {
			// A file truncated under us cannot fill its Content-Length.
			l.close(c)
			return
		}
	}
	if c.file >= 0 {
		rawsys.Close(c.file)
		c.file = -1
	}
	if c.px != nil {
		l.resumeProxy(c)
		return
	}
	if c.handoff {
		c.handoff = false
		l.handoff(c, c.in)
		return
	}
	if cap(c.out) > 4096 {
		c.out = nil
	}
	if c.writing || c.muted {
		c.writing, c.muted = false, false
		if err := rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)}); err != nil {
			l.close(c)
			return
		}
	}
	if c.closeAfter {
		l.linger(c)
		return
	}
	if len(c.in) > 0 {
		// The start of the next request, or pipelined requests that
		// waited behind a file.
		c.state = lcReading
		c.deadline = l.now + l.rht
		if c.waiting {
			c.waiting = false
			l.serve(c, c.in)
		}
		return
	}
	c.state, c.since = lcIdle, l.now
	c.deadline = 0
	if l.idle > 0 {
		c.deadline = l.now + l.idle
	}
}

func (l *loop) waitWritable(c *loopConn) {
	if c.state != lcWriting || c.deadline == 0 {
		// write_timeout counts from the end of the head, as in net/http.
		c.state = lcWriting
		c.deadline = 0
		if l.wto > 0 {
			c.deadline = c.headAt + l.wto
		}
	}
	if c.writing {
		return
	}
	c.writing = true
	if err := rawsys.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(c.fd)}); err != nil {
		l.close(c)
	}
}

// linger closes c after its last answer without losing that answer: a
// close(2) with unread bytes in the socket sends a reset, which can reach
// the client before the answer does. So the write side is shut down and
// the loop reads until the client closes, or lingerTime passes.
func (l *loop) linger(c *loopConn) {
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		l.close(c)
		return
	}
	c.state, c.since = lcLinger, l.now
	c.in = nil
	c.deadline = l.now + int64(lingerTime)
	l.discard(c)
}

// discard reads and drops what a lingering connection receives.
func (l *loop) discard(c *loopConn) {
	for {
		n, err := rawsys.Read(c.fd, l.rbuf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil || n == 0 {
			l.close(c)
			return
		}
	}
}

// sweep closes connections past their deadline and, in a drain, idle
// ones past the grace; at worker_connections it resumes accepting when a
// slot is free, or evicts the quietest idle connection for a client that
// waits.
func (l *loop) sweep() {
	grace := int64(l.w.grace)
	var quietest *loopConn
	for i := 0; i < len(l.list); {
		c := l.list[i]
		if c.deadline != 0 && l.now >= c.deadline {
			if c.state == lcLinger && l.now-c.since < int64(lingerMax) && unsent(c.fd) > 0 {
				// The answer is still leaving: a close now could lose it.
				c.deadline = l.now + int64(lingerTime)
				i++
				continue
			}
			// A timeout: net/http closes without an answer too.
			if l.draining && c.state == lcIdle {
				l.w.drainIdleClosed.Add(1) // keepalive ended it before the drain's grace did
			}
			l.close(c)
			continue // c's slot now holds another connection
		}
		if c.state == lcIdle {
			if l.draining && l.now-c.since >= grace && l.now-l.drainStart >= grace && quiet(c.fd) {
				l.w.drainIdleClosed.Add(1)
				l.close(c)
				continue
			}
			if quietest == nil || c.since < quietest.since {
				quietest = c
			}
		}
		i++
	}
	if l.paused && !l.draining {
		if len(l.w.connSem) < cap(l.w.connSem) {
			l.paused = false
			if err := l.startAccepting(); err != nil {
				l.w.log.Warn("resume accepting failed", "err", err)
			}
		} else if l.w.limits.evict && quietest != nil && l.now-quietest.since >= int64(evictMinQuiet) && l.backlogged() && quiet(quietest.fd) {
			l.close(quietest)
			l.w.noteEviction(time.Unix(0, l.now))
		}
	}
}

// backlogged reports whether a client waits in an accept queue.
func (l *loop) backlogged() bool {
	pfds := make([]unix.PollFd, len(l.lfds))
	for i, fd := range l.lfds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	n, err := unix.Poll(pfds, 0)
	return err == nil && n > 0
}

// quiet reports whether nothing is on its way on fd in either direction:
// no request bytes wait unread, and the last answer has left the send
// buffer. Closing a connection with an answer still in the buffer hands
// its delivery to the kernel's orphan handling, which may drop it.
func quiet(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err == nil && n > 0 {
		return false
	}
	return unsent(fd) == 0
}

// unsent is how many bytes wait in fd's send buffer (0 if unknown).
func unsent(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		return 0
	}
	return n
}

// handoff gives c to net/http with data, the bytes read and not answered.
func (l *loop) handoff(c *loopConn, data []byte) {
	if l.w.log.Enabled(context.Background(), slog.LevelDebug) {
		line, _, _ := bytes.Cut(data, []byte("\n"))
		l.w.log.Debug("event loop hands a connection to net/http", "request", string(line[:min(len(line), 80)]))
	}
	l.forgetConn(c)
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f) // a dup, in Go's poller
	f.Close()
	if err != nil {
		l.w.release()
		l.w.log.Warn("handing a connection to net/http failed", "err", err)
		return
	}
	pc := &prefixConn{Conn: nc, prefix: append([]byte(nil), data...)}
	// adopt registers it before the drain can look; the slot goes with it.
	l.handoffs.push(l.w.adopt(pc))
}

// prefixConn reads the bytes the loop already read before the socket's.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// ReadFrom keeps sendfile(2) (see trackedConn.ReadFrom).
func (p *prefixConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := p.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{p.Conn}, r)
}

// SyscallConn lets the drain peek at the socket.
func (p *prefixConn) SyscallConn() (syscall.RawConn, error) {
	return p.Conn.(syscall.Conn).SyscallConn()
}

// handoffQueue carries handed-over connections to net/http's Serve.
type handoffQueue struct {
	mu     sync.Mutex
	q      []net.Conn
	closed bool
	ready  chan struct{}
}

func newHandoffQueue() *handoffQueue { return &handoffQueue{ready: make(chan struct{}, 1)} }

func (h *handoffQueue) push(c net.Conn) {
	h.mu.Lock()
	h.q = append(h.q, c)
	h.mu.Unlock()
	h.wake()
}

func (h *handoffQueue) wake() {
	select {
	case h.ready <- struct{}{}:
	default:
	}
}

// close ends Accept once the queue is empty.
func (h *handoffQueue) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.wake()
}

// handoffListener is what net/http serves in a worker with an event loop:
// the connections the loop handed over. One goroutine calls Accept.
type handoffListener struct {
	q    *handoffQueue
	addr net.Addr
}

func (h handoffListener) Accept() (net.Conn, error) {
	for {
		h.q.mu.Lock()
		if len(h.q.q) > 0 {
			c := h.q.q[0]
			h.q.q[0] = nil
			h.q.q = h.q.q[1:]
			h.q.mu.Unlock()
			return c, nil
		}
		closed := h.q.closed
		h.q.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		<-h.q.ready
	}
}

func (h handoffListener) Close() error   { return nil }
func (h handoffListener) Addr() net.Addr { return h.addr }
