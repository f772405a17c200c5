# hfork's Python runner, part 4: the asyncio classes (tornado, aiohttp,
# asgi), each on its framework's own server. timeout is liveness here: the
# heartbeat runs on the event loop, so a blocked loop stops it and the
# master replaces the worker. A drain is the framework's graceful shutdown:
# stop accepting, let in-flight requests finish (their responses say
# "Connection: close"), close idle connections, bounded by graceful_timeout.


def run_asyncio(w, start, drain):
    """Runs start() (begins serving), says READY=1, beats, and on SIGTERM
    runs drain() within graceful_timeout."""
    import asyncio

    def fast():
        w.access.close()
        os._exit(0)

    async def main():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def term():
            if w.begin_drain():
                stop.set()

        loop.add_signal_handler(signal.SIGTERM, term)
        loop.add_signal_handler(signal.SIGINT, fast)
        loop.add_signal_handler(signal.SIGQUIT, fast)
        loop.add_signal_handler(signal.SIGUSR1, w.access.reopen)
        buf = [b""]

        def control():
            try:
                chunk = os.read(w.ctl_fd, 4096)
            except BlockingIOError:
                return
            if not chunk:
                os._exit(1)
            buf[0] += chunk
            while b"\n" in buf[0]:
                line, buf[0] = buf[0].split(b"\n", 1)
                w.command(line)

        os.set_blocking(w.ctl_fd, False)
        loop.add_reader(w.ctl_fd, control)
        await start()
        w.ready()

        async def beats():
            iv = heartbeat_interval(w.timeout)
            while True:
                w.beat()
                await asyncio.sleep(iv)

        beat = loop.create_task(beats())
        await stop.wait()
        try:
            await asyncio.wait_for(drain(), w.graceful)
        except asyncio.TimeoutError:
            w.log.warn("worker drain reached graceful_timeout; closing what is left")
        beat.cancel()

    asyncio.run(main())
    w.finish()


async def settle_accepted():
    """Lets connections accepted before the listening sockets closed reach
    their protocol: asyncio registers one a few loop turns after accept(),
    and a drain that counted connections before that would end with a
    request unread on it (a reset for the client)."""
    import asyncio

    for _ in range(10):
        await asyncio.sleep(0)


def serve_tornado(w, app, lsocks):
    import asyncio
    import tornado.httpserver
    import tornado.httputil
    import tornado.web
    import tornado.wsgi

    if not isinstance(app, tornado.web.Application):
        # A WSGI app under Tornado's IOLoop, as gunicorn's tornado worker
        # allows; it blocks the loop while it runs, as there.
        app = tornado.web.Application([(r".*", tornado.web.FallbackHandler, {"fallback": tornado.wsgi.WSGIContainer(app)})])
    inner_log = app.settings.get("log_function")

    def log_request(handler):
        w.stats.served += 1
        w.stats.observe(handler.get_status(), int(handler._headers.get("Content-Length", 0) or 0),
                        handler.request.request_time())
        if w.access.enabled:
            r = handler.request
            end = time.time()
            w.access.log(r.remote_ip or "", r.method, r.uri, r.version, handler.get_status(), int(handler._headers.get("Content-Length", 0) or 0),
                         r.headers.get("Referer", ""), r.headers.get("User-Agent", ""), r.host or "", end - r.request_time(), end)
        if inner_log is not None:
            inner_log(handler)

    app.settings["log_function"] = log_request
    server = None

    class Message(tornado.httputil.HTTPMessageDelegate):
        """Marks its connection busy from the request head to the end of
        the response, so a drain closes only idle connections."""

        def __init__(self, inner, server_conn, request_conn):
            self.inner, self.server_conn = inner, server_conn
            finish = request_conn.finish

            def finished():
                server_conn.hfork_busy = False
                return finish()

            request_conn.finish = finished

        def headers_received(self, start_line, headers):
            self.server_conn.hfork_busy = True
            return self.inner.headers_received(start_line, headers)

        def data_received(self, chunk):
            return self.inner.data_received(chunk)

        def finish(self):
            return self.inner.finish()

        def on_connection_close(self):
            self.server_conn.hfork_busy = False
            return self.inner.on_connection_close()

    class Server(tornado.httpserver.HTTPServer):
        def start_request(self, server_conn, request_conn):
            return Message(super().start_request(server_conn, request_conn), server_conn, request_conn)

    async def start():
        nonlocal server
        server = Server(
            app, no_keep_alive=w.keepalive <= 0, idle_connection_timeout=w.keepalive or None,
            max_header_size=w.max_header, max_body_size=w.max_body or None)
        server.add_sockets(lsocks)

    async def drain():
        server.stop()  # this worker's listening fds only
        server.conn_params.no_keep_alive = True  # the next response on each connection closes it
        grace = w.keepalive
        while server._connections:
            # An idle connection closes once it has been idle for the grace;
            # one in a request finishes it first.
            if time.monotonic() - w.drain_started >= grace:
                for conn in list(server._connections):
                    if not getattr(conn, "hfork_busy", False):
                        conn.stream.close()
            await asyncio.sleep(0.02)

    run_asyncio(w, start, drain)


def serve_aiohttp(w, app, lsocks):
    from aiohttp import abc, web

    if not isinstance(app, web.Application):
        raise TypeError("class aiohttp serves an aiohttp.web.Application; %s is a %s" % (w.l["app"], type(app).__name__))
    if w.max_body:
        app._client_max_size = w.max_body

    class AccessLogger(abc.AbstractAccessLogger):
        def __init__(self, logger, fmt):
            pass

        @property
        def enabled(self):
            return True

        def log(self, request, response, took):
            w.stats.served += 1
            w.stats.observe(response.status, response.body_length, took)
            if w.access.enabled:
                peer = request.remote or ""
                end = time.time()
                w.access.log(peer, request.method, request.path_qs, "HTTP/%d.%d" % request.version, response.status,
                             response.body_length, request.headers.get("Referer", ""),
                             request.headers.get("User-Agent", ""), request.host or "", end - took, end)

    async def close_when_draining(request, response):
        # A response during the drain says "Connection: close", so the
        # client sends its next request to a new worker, not into a close.
        # aiohttp computes its Connection header before this hook runs,
        # so the header is set here too.
        if w.draining:
            response.force_close()
            response.headers["Connection"] = "close"

    try:
        app.on_response_prepare.append(close_when_draining)
    except RuntimeError:  # a frozen app: aiohttp's own drain only
        pass
    runner = web.AppRunner(app, handle_signals=False, access_log_class=AccessLogger,
                           keepalive_timeout=w.keepalive)
    sites = []

    async def start():
        await runner.setup()
        for s in lsocks:
            site = web.SockSite(runner, s, shutdown_timeout=w.graceful)
            await site.start()
            sites.append(site)

    async def drain():
        import asyncio
        # aiohttp's own stop (AppRunner.cleanup) closes idle keep-alive
        # connections at once, and a request the client sent on one just
        # then is lost. As the built-in workers do: stop accepting, answer
        # with "Connection: close", leave idle connections the keep-alive
        # grace, close those still idle, then let cleanup finish the rest
        # (on_shutdown, on_cleanup).
        for site in sites:
            if site._server is not None:
                site._server.close()
        await settle_accepted()
        conns = runner.server._connections if runner.server is not None else {}
        while conns and time.monotonic() - w.drain_started < w.keepalive:
            await asyncio.sleep(0.02)
        for h in list(conns):
            if h._waiter is not None and not h._messages:
                h.force_close()
        await runner.cleanup()

    run_asyncio(w, start, drain)


def serve_asgi(w, app, lsocks):
    try:
        import uvicorn
        import uvicorn.server
    except ImportError as e:
        boot_failed(w, "class asgi needs uvicorn (its protocol layer), which this interpreter cannot import", e)

    async def logged(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        st = [0, 0]
        start = time.time()

        async def send_counted(msg):
            if msg["type"] == "http.response.start":
                st[0] = msg["status"]
                if w.draining:
                    # The client sends its next request to a new worker,
                    # not into this connection's close.
                    msg = dict(msg, headers=list(msg.get("headers") or []) + [(b"connection", b"close")])
            elif msg["type"] == "http.response.body":
                st[1] += len(msg.get("body", b""))
            await send(msg)

        try:
            await app(scope, receive, send_counted)
        finally:
            w.stats.served += 1
            w.stats.observe(st[0] or 500, st[1], time.time() - start)  # none started: uvicorn answers 500
            if w.access.enabled:
                client = scope.get("client") or ("", 0)
                target = scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "")
                if scope.get("query_string"):
                    target += "?" + scope["query_string"].decode("latin-1")
                hdrs = dict(scope.get("headers") or [])
                w.access.log(client[0] or "", scope.get("method", ""), target, "HTTP/" + scope.get("http_version", "1.1"),
                             st[0], st[1], hdrs.get(b"referer", b"").decode("latin-1"),
                             hdrs.get(b"user-agent", b"").decode("latin-1"), hdrs.get(b"host", b"").decode("latin-1"),
                             start, time.time())

    config = uvicorn.Config(logged, interface="asgi3", http="h11", lifespan="auto", access_log=False, log_config=None,
                            timeout_keep_alive=max(int(w.keepalive), 1) if w.keepalive else 1,
                            limit_concurrency=w.conns or None, server_header=False, proxy_headers=False)
    config.load()
    server = uvicorn.server.Server(config)
    server.lifespan = config.lifespan_class(config)
    state = {}

    async def start():
        import asyncio
        await server.startup(sockets=lsocks)
        if server.should_exit:
            raise SystemExit("asgi lifespan startup failed")
        # uvicorn's tick keeps the Date header fresh; its exit check is
        # ours to set at the drain.
        state["loop"] = asyncio.get_running_loop().create_task(server.main_loop())

    async def drain():
        import asyncio
        # uvicorn's shutdown closes idle keep-alive connections at once, and
        # a request the client sent on one just then is lost. As the
        # built-in workers do: stop accepting, answer with "Connection:
        # close" (send_counted), leave idle connections the keep-alive
        # grace, then let uvicorn's shutdown close what is idle and wait for
        # the rest.
        for srv in server.servers:
            srv.close()
        await settle_accepted()
        while server.server_state.connections and time.monotonic() - w.drain_started < w.keepalive:
            await asyncio.sleep(0.02)
        server.should_exit = True
        await state["loop"]
        await server.shutdown(sockets=lsocks)

    run_asyncio(w, start, drain)
