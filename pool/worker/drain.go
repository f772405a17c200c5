package worker

import (
	"strconv"
	"time"

	"github.com/hfork/hfork/pool/wire"
	"github.com/hfork/hfork/pool/worker/internal/evloop"
)

// drainPoll is how often a drain looks for idle connections to close. It
// bounds how late after its grace an idle connection closes.
const drainPoll = 20 * time.Millisecond

// drain stops the worker without losing a request. It
//
//  1. sends STOPPING=1;
//  2. marks every response from now on "Connection: close", including
//     those of requests already in flight that have not written their
//     header yet: the next request on each keep-alive connection is
//     answered, then net/http closes the connection;
//  3. closes this worker's listening fds, so it accepts nothing more; the
//     sockets stay open in the siblings and the master, and connections in
//     the kernel's queue go to them;
//  4. closes a connection that is idle (or accepted and still silent) only
//     once it has been so for the idle grace, counted at the earliest from
//     the start of the drain, and only if no byte has arrived on it: a
//     client may be sending a request on it right now, and closing under
//     that request is how a reload loses it. A request that does arrive is
//     served and answered with "Connection: close". The grace defaults to
//     the keep-alive timeout: an idle connection then closes no earlier
//     than keep-alive would have closed it anyway, so a client that keeps
//     its pool's idle timeout below the server's keep-alive, the usual
//     defence against this very race, never meets it during a drain
//     either (a shorter grace would only end drains sooner);
//  5. waits until every connection is closed, hijacked (upgraded) ones
//     included, bounded by graceful_timeout from the start of the drain;
//  6. then closes what is idle or stalled, and lets the connections still
//     moving bytes (a download, an upload, a proxied stream) run while
//     they move, each closed once it moves nothing for
//     evloop.StallWindow;
//  7. at shutdown_timeout from the start of the drain closes whatever is
//     left, and returns.
//
// drain never closes a connection with a request in flight before
// graceful_timeout, nor one still moving before shutdown_timeout, and
// never calls http.Server.Shutdown, which closes idle connections at
// once. It does not wait beyond those for anything: not for slow
// requests, not for upgraded streams, not for handlers that keep running
// after their connection is gone. It returns early, having closed
// everything, when stop is closed.
func (w *worker) drain(stop <-chan struct{}) {
	start := time.Now()
	open0, served0 := w.open.Load()+w.loopOpen(), w.track.served.Load()
	w.draining.Store(true)
	w.setState(stateDraining)
	// Stop accepting before anything that could wait (the notify socket
	// can be full while the master is busy).
	w.closeListeners()
	// HTTP/2 connections of hfork's server get GOAWAY now; their open
	// streams finish.
	w.h2s.drain()
	if w.loop != nil {
		// The loop stops accepting and applies steps 2, 4 and 6 to its own
		// connections; it ends once it holds none.
		w.loop.Drain()
	}
	if err := w.notify("STOPPING=1"); err != nil {
		w.log.Warn("worker cannot report stopping", "err", err)
	}
	// Every connection the listeners accepted is registered before Accept
	// returns; once the accept loops are done, the set only shrinks.
	w.serving.Wait()

	graceful := time.NewTimer(w.cfg.GracefulTimeout)
	defer graceful.Stop()
	hard := time.NewTimer(max(w.cfg.ShutdownTimeout, w.cfg.GracefulTimeout))
	defer hard.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	lastReport, lastSample := start, time.Time{}
	var d drainCount
	pastGrace := false
	grace := w.grace
	// hurried: the master said this generation is over
	// max_draining_generations; idle0 is the idle closes before that.
	hurried, idle0 := false, uint64(0)
	for {
		cs := w.snapshotConns()
		if len(cs) == 0 && w.loopDone() {
			d.addLoop(w.loop)
			if hurried {
				d.bounded += int(w.drainIdleClosed.Load() - idle0)
			}
			w.log.Info("worker drained", "took", time.Since(start).Round(time.Millisecond).String(),
				"requests", w.track.served.Load(), "cut", d.cut, "moving_past_graceful", d.spared)
			w.reportDrain(open0, served0, d)
			return
		}
		now := time.Now()
		for _, c := range cs {
			c.kick(now, start, grace)
		}
		if now.Sub(lastSample) >= evloop.StallSample {
			lastSample = now
			for _, c := range cs {
				if c.busy() {
					c.sample(now)
				}
			}
			if pastGrace {
				cut, _ := w.cutStalled(cs, now)
				d.cut += cut
				d.late += cut
			}
		}
		if now.Sub(lastReport) >= time.Second {
			lastReport = now
			w.log.Debug("worker draining", "conns", len(cs), "states", connStates(cs), "loop_conns", w.loopOpen())
		}
		select {
		case <-tick.C:
		case <-w.connGone:
		case <-stop:
			return
		case <-graceful.C:
			pastGrace = true
			inflight := w.track.snapshot(time.Now()).Inflight + int(w.loopBusy())
			now := time.Now()
			for _, c := range cs {
				if c.busy() {
					c.sample(now)
				}
			}
			cut, spared := w.cutStalled(cs, now)
			d.cut += cut
			d.spared += spared
			if w.loop != nil {
				w.loop.PastGrace()
			}
			w.log.Info("worker drain reached graceful_timeout; closing what is idle or stalled, letting what moves finish",
				"graceful_timeout", w.cfg.GracefulTimeout.String(), "cut", cut, "moving", spared,
				"loop_conns", w.loopOpen(), "inflight", inflight)
		case h := <-w.hurry:
			if hurried {
				continue
			}
			hurried, idle0, grace = true, w.drainIdleClosed.Load(), 0
			if w.loop != nil {
				w.loop.Hurry()
			}
			hard.Reset(h)
			w.log.Info("worker drain hurried: its generation is over max_draining_generations; closing idle connections now, the rest after the grace",
				"grace", h.String(), "conns", len(cs), "loop_conns", w.loopOpen())
		case <-hard.C:
			inflight := w.track.snapshot(time.Now()).Inflight + int(w.loopBusy())
			w.drainCut.Store(true)
			loopConns := w.stopLoop()
			closed, hijacked := w.closeConns()
			d.addLoop(w.loop)
			if hurried {
				d.bounded = int(w.drainIdleClosed.Load()-idle0) + closed + loopConns
				d.cut += closed + loopConns
				w.log.Warn("worker drain cut what was left: its generation is over max_draining_generations",
					"conns", closed+loopConns, "hijacked", hijacked, "inflight", inflight, "closed_early", d.bounded)
				w.reportDrain(open0, served0, d)
				return
			}
			d.capped = closed + loopConns
			d.cut += d.capped
			w.log.Warn("worker drain reached shutdown_timeout; closing what is left",
				"shutdown_timeout", max(w.cfg.ShutdownTimeout, w.cfg.GracefulTimeout).String(), "conns", d.capped,
				"hijacked", hijacked, "inflight", inflight)
			w.reportDrain(open0, served0, d)
			return
		}
	}
}

// drainCount is what a drain cut and spared past graceful_timeout.
type drainCount struct {
	cut    int // closed with something unfinished (capped included)
	spared int // still moving at graceful_timeout, let run
	late   int // spared at graceful_timeout, cut when they stalled later
	capped int // still open at shutdown_timeout
	// bounded: closed early, idle or not, because the generation was
	// over max_draining_generations.
	bounded int
	loop    bool
}

// addLoop adds the event loop's counts, once, after it ended.
func (d *drainCount) addLoop(l *evloop.Loop) {
	if l == nil || d.loop {
		return
	}
	d.loop = true
	d.cut += int(l.Cut())
	d.spared += int(l.Moving())
	d.late += int(l.LateCut())
}

func (w *worker) loopBusy() int64 {
	if w.loop == nil {
		return 0
	}
	return w.loop.Busy()
}

// reportDrain tells the master what the drain did with the connections
// open when it began (open0): those it closed idle, those cut at the
// deadline, and the rest, which it let finish; and how many requests it
// answered meanwhile; then how many it let run past graceful_timeout
// that finished, how many of the cut were cut at shutdown_timeout, and
// how many it closed early because its generation was over
// max_draining_generations. A connection accepted during the drain (one already
// on its way when the listeners closed) counts as let finish.
func (w *worker) reportDrain(open0 int64, served0 uint64, d drainCount) {
	idle := w.drainIdleClosed.Load()
	cut := uint64(d.cut)
	handed := max(uint64(max(open0, 0)), idle+cut) - idle - cut
	outlasted := max(d.spared-d.late-d.capped, 0)
	fields := wire.KeyDrained + "=" + strconv.FormatUint(handed, 10) + "," +
		strconv.FormatUint(w.track.served.Load()-served0, 10) + "," +
		strconv.FormatUint(idle, 10) + "," + strconv.FormatUint(cut, 10) + "," +
		strconv.Itoa(outlasted) + "," + strconv.Itoa(d.capped) + "," + strconv.Itoa(d.bounded)
	if err := w.notify(fields); err != nil {
		w.log.Warn("worker cannot report its drain", "err", err)
	}
}

// closeListeners closes this worker's fds of the listening sockets.
func (w *worker) closeListeners() {
	w.lnsClosed.Store(true)
	for _, l := range w.lns {
		if err := l.Close(); err != nil {
			w.log.Debug("close listener", "addr", l.Addr().String(), "err", err)
		}
	}
}

// stopNow is the fast stop: the listeners and every connection close now;
// requests in flight are cut off. It waits only for the accept loops.
func (w *worker) stopNow() {
	w.draining.Store(true)
	if w.state.Load() != int32(stateDraining) {
		w.setState(stateDraining)
		if err := w.notify("STOPPING=1"); err != nil {
			w.log.Warn("worker cannot report stopping", "err", err)
		}
	}
	w.closeListeners()
	loopConns := w.stopLoop()
	closed, hijacked := w.closeConns()
	closed += loopConns
	w.serving.Wait()
	w.log.Info("worker stopped", "conns", closed, "hijacked", hijacked)
}

// connStates summarizes connection states for a drain's progress line.
func connStates(cs []*trackedConn) map[string]int {
	out := map[string]int{}
	for _, c := range cs {
		c.mu.Lock()
		st := c.state.String()
		if c.gotData {
			st += "+data"
		}
		c.mu.Unlock()
		out[st]++
	}
	return out
}

// loopDone reports whether the event loop, if any, has ended.
func (w *worker) loopDone() bool {
	if w.loop == nil {
		return true
	}
	select {
	case <-w.loop.Done():
		return true
	default:
		return false
	}
}

func (w *worker) loopOpen() int64 {
	if w.loop == nil {
		return 0
	}
	return w.loop.Open()
}

// stopLoop closes the event loop's connections and waits for it to end;
// it reports how many connections it closed.
func (w *worker) stopLoop() int {
	if w.loop == nil {
		return 0
	}
	n := int(w.loop.Open())
	w.loop.Stop()
	<-w.loop.Done()
	return n
}
