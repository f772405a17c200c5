"""aiohttp_app.py: an aiohttp app as an hfork exec worker (what gunicorn's
"-k aiohttp.GunicornWebWorker", formerly "gaiohttp", does, with hfork as the
arbiter).

    listener "aiohttp" {
      class   = "exec"
      command = ["python3", "apps/aiohttp_app.py"]
    }

web.SockSite serves each socket hfork passes in. On SIGTERM it says
STOPPING=1, stops accepting, answers with "Connection: close", leaves idle
keep-alive connections a second (a client may be sending on one), then
runs the AppRunner's cleanup: close idle connections, wait (DRAIN_SECONDS
at most) for in-flight requests, exit. aiohttp's cleanup alone closes idle
connections at once, under requests clients are sending.
"""

import asyncio
import os
import signal

from aiohttp import web

import sdnotify

GREETING = os.environ.get("GREETING", "hello")


async def hello(request):
    return web.Response(text="%s from aiohttp\n" % GREETING)


async def sleep(request):
    try:
        seconds = min(max(float(request.query.get("s", "1")), 0.0), 10.0)
    except ValueError:
        seconds = 1.0
    await asyncio.sleep(seconds)
    return web.Response(text="%s from aiohttp\n" % GREETING)


async def main():
    draining = False

    async def close_when_draining(request, response):
        if draining:  # aiohttp sets its Connection header before this hook
            response.force_close()
            response.headers["Connection"] = "close"

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/sleep", sleep)
    app.on_response_prepare.append(close_when_draining)
    runner = web.AppRunner(app, access_log=None)  # no access log: like gunicorn's default
    await runner.setup()
    sites = []
    for sock in sdnotify.listen_sockets():
        site = web.SockSite(runner, sock, shutdown_timeout=sdnotify.DRAIN_SECONDS)
        await site.start()
        sites.append(site)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    ping_every = sdnotify.watchdog_interval()
    if ping_every:
        async def watchdog():
            while True:
                sdnotify.notify("WATCHDOG=1")  # from the event loop itself
                await asyncio.sleep(ping_every)
        pinger = asyncio.create_task(watchdog())

    sdnotify.notify("READY=1", "STATUS=serving")
    await stop.wait()

    sdnotify.notify("STOPPING=1")
    draining = True
    for site in sites:
        site._server.close()  # stop accepting; the siblings take new clients
    for _ in range(10):
        await asyncio.sleep(0)  # connections accepted just before reach aiohttp
    conns = runner.server._connections
    end = loop.time() + 1.0
    while conns and loop.time() < end:
        await asyncio.sleep(0.02)
    await runner.cleanup()
    if ping_every:
        pinger.cancel()


if __name__ == "__main__":
    asyncio.run(main())
