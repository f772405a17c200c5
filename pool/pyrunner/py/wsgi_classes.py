# hfork's Python runner, part 3: the WSGI classes. sync answers one request
# per connection; thread hands readable connections to a pool of threads
# and keeps idle ones in a selector (gunicorn's gthread); gevent and eventlet
# give every connection a green thread.
#
# Drain (SIGTERM), as the built-in workers do: STOPPING=1, close this
# worker's listening fds, answer the next request on each connection with
# "Connection: close", close a connection only once it has been idle for the
# grace (keepalive) and no byte arrived on it, exit when none is left or at
# graceful_timeout. SIGINT and SIGQUIT stop at once; SIGUSR1 reopens the
# access log.

import select


def install_signals(w, on_drain):
    def term(signum, frame):
        if w.begin_drain():
            on_drain()

    def fast(signum, frame):
        w.access.close()
        os._exit(0)

    def usr1(signum, frame):
        w.access.reopen()

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, fast)
    signal.signal(signal.SIGQUIT, fast)
    signal.signal(signal.SIGUSR1, usr1)


def start_threads(w):
    """Heartbeat and control pipe in real threads: a sync worker busy in a
    request still reports which request and for how long, so the master can
    enforce timeout."""
    def beats():
        iv = heartbeat_interval(w.timeout)
        while True:
            w.beat()
            time.sleep(iv)

    threading.Thread(target=beats, name="hfork-heartbeat", daemon=True).start()
    threading.Thread(target=w.control_reader, name="hfork-control", daemon=True).start()


def wake_pipe():
    r, wr = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wr, warn_on_full_buffer=False)
    return r, wr


def serve_sync(w, app, lsocks):
    srv = WSGIServer(w, app, False)
    servers = {s: server_of(s) for s in lsocks}
    wr, _ = wake_pipe()
    install_signals(w, lambda: None)
    start_threads(w)
    w.ready()
    while not w.draining:
        try:
            ready, _, _ = select.select(lsocks + [wr], [], [], 1.0)
        except InterruptedError:
            continue
        for s in ready:
            if s == wr:
                os.read(wr, 4096)
                continue
            try:
                sock, addr = s.accept()
            except (BlockingIOError, InterruptedError):
                continue  # a sibling took it
            except OSError as e:
                w.log.warn("accept failed", err=str(e))
                time.sleep(0.01)
                continue
            sock.settimeout(w.header_timeout)
            c = Conn(sock, addr, servers[s])
            srv.serve_one(c, False)
            c.close()
            if w.draining:
                break
    for s in lsocks:
        s.close()
    w.finish()


def serve_thread(w, app, lsocks):
    import collections
    import queue
    import selectors
    srv = WSGIServer(w, app, True)
    servers = {s: server_of(s) for s in lsocks}
    sel = selectors.DefaultSelector()
    wr, wwr = wake_pipe()
    back = collections.deque()
    work = queue.SimpleQueue()
    open_conns = set()
    grace = w.keepalive
    may_keep = w.keepalive > 0

    def worker_thread():
        while True:
            c = work.get()
            keep = True
            while keep:
                keep = srv.serve_one(c, may_keep)
                if not c.has_request():
                    break
            back.append((c, keep))
            try:
                os.write(wwr, b"\0")
            except BlockingIOError:
                pass

    for i in range(w.threads):
        threading.Thread(target=worker_thread, name="hfork-thread-%d" % i, daemon=True).start()
    install_signals(w, lambda: None)
    start_threads(w)
    listening, paused = True, False
    for s in lsocks:
        sel.register(s, selectors.EVENT_READ, None)
    sel.register(wr, selectors.EVENT_READ, "wake")
    w.ready()
    last_sweep = time.monotonic()
    while True:
        try:
            events = sel.select(0.02 if w.draining else 1.0)
        except InterruptedError:
            events = []
        for key, _ in events:
            if key.data is None:
                s = key.fileobj
                for _ in range(64):
                    if len(open_conns) >= w.conns:
                        break
                    try:
                        sock, addr = s.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:
                        w.log.warn("accept failed", err=str(e))
                        break
                    sock.settimeout(w.header_timeout)
                    c = Conn(sock, addr, servers[s])
                    open_conns.add(c)
                    sel.register(sock, selectors.EVENT_READ, c)
            elif key.data == "wake":
                try:
                    os.read(wr, 4096)
                except BlockingIOError:
                    pass
            else:
                c = key.data
                sel.unregister(c.sock)
                c.got_data = True
                work.put(c)
        while back:
            c, keep = back.popleft()
            if keep:
                sel.register(c.sock, selectors.EVENT_READ, c)
            else:
                open_conns.discard(c)
                c.close()
        if w.draining and listening:
            listening = False
            for s in lsocks:
                if not paused:
                    sel.unregister(s)
                s.close()
        elif listening:
            # worker_connections reached: leave the queue to the siblings
            full = len(open_conns) >= w.conns
            if full != paused:
                paused = full
                for s in lsocks:
                    if full:
                        sel.unregister(s)
                    else:
                        sel.register(s, selectors.EVENT_READ, None)
        now = time.monotonic()
        if w.draining or now - last_sweep >= 1.0:
            last_sweep = now
            for key in list(sel.get_map().values()):
                c = key.data
                if not isinstance(c, Conn):
                    continue
                idle = now - c.idle_since
                if w.draining:
                    idle = now - max(c.idle_since, w.drain_started)
                    if idle >= grace:
                        sel.unregister(c.sock)
                        open_conns.discard(c)
                        c.close()
                elif idle > w.keepalive:
                    sel.unregister(c.sock)
                    open_conns.discard(c)
                    c.close()
        if w.draining:
            if not open_conns:
                break
            if now - w.drain_started > w.graceful:
                w.log.warn("worker drain reached graceful_timeout; closing what is left", conns=len(open_conns))
                break
    w.finish()


def serve_green(w, app, lsocks, kind):
    """gevent and eventlet: the monkey patch happened before the sockets and
    the app were made, so every socket call below yields."""
    if kind == "gevent":
        import gevent
        import gevent.pool
        spawn, sleep, pool = gevent.spawn, gevent.sleep, gevent.pool.Pool(w.conns)
        wait_room = pool.wait_available
    else:
        import eventlet
        spawn, sleep, pool = eventlet.spawn, eventlet.sleep, eventlet.GreenPool(w.conns)

        def wait_room():
            while pool.free() == 0:
                sleep(0.005)
    srv = WSGIServer(w, app, True)
    open_conns = set()
    grace = w.keepalive
    may_keep = w.keepalive > 0

    def handle(c):
        sock = c.sock
        try:
            while True:
                sock.settimeout(w.keepalive if c.requests else w.header_timeout)
                if not srv.serve_one(c, may_keep):
                    break
        except Exception as e:  # a dying connection must not take the worker with it
            w.log.debug("connection ended", err=str(e))
        finally:
            open_conns.discard(c)
            c.close()

    def acceptor(s):
        server = server_of(s)
        while not w.draining:
            wait_room()
            try:
                sock, addr = s.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                if w.draining:
                    return
                w.log.warn("accept failed", err=str(e))
                sleep(0.01)
                continue
            # Counted before its greenlet runs: a drain that found no
            # connection in between would exit with this one's request
            # unread (a reset for the client).
            c = Conn(sock, addr, server)
            open_conns.add(c)
            pool.spawn(handle, c)

    def beats():
        iv = heartbeat_interval(w.timeout)
        while True:
            w.beat()
            sleep(iv)

    def control():
        fd = w.ctl_fd
        os.set_blocking(fd, False)
        buf = b""
        while True:
            if kind == "gevent":
                from gevent.os import nb_read
                chunk = nb_read(fd, 4096)
            else:
                from eventlet.hubs import trampoline
                trampoline(fd, read=True)
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    continue
            if not chunk:
                os._exit(1)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                w.command(line)

    done = []

    def drain():
        for s in lsocks:
            try:
                s.close()
            except OSError:
                pass
        while open_conns:
            now = time.monotonic()
            if now - w.drain_started > w.graceful:
                w.log.warn("worker drain reached graceful_timeout; closing what is left", conns=len(open_conns))
                break
            for c in list(open_conns):
                if not c.busy and not c.got_data and now - max(c.idle_since, w.drain_started) >= grace:
                    try:
                        c.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            sleep(0.02)
        done.append(True)

    if kind == "gevent":
        import gevent
        install_signals(w, lambda: None)
        gevent.signal_handler(signal.SIGTERM, lambda: w.begin_drain() and spawn(drain))
    else:
        install_signals(w, lambda: spawn(drain))
    spawn(beats)
    spawn(control)
    for s in lsocks:
        spawn(acceptor, s)
    w.ready()
    while not done:
        sleep(0.05)
    w.finish()
