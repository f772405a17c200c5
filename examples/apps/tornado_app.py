"""tornado_app.py: a Tornado app as an hfork exec worker (what gunicorn's
"-k tornado" worker does, with hfork as the arbiter).

    listener "tornado" {
      class   = "exec"
      command = ["python3", "apps/tornado_app.py"]
    }

HTTPServer.add_sockets() serves the sockets hfork passes in. On SIGTERM it
says STOPPING=1, stops accepting, waits (DRAIN_SECONDS at most) until no
request is in flight, then closes the idle keep-alive connections and exits.
"""

import asyncio
import os
import signal
import time

import tornado.httpserver
import tornado.web

import sdnotify

KEEPALIVE = 5.0  # seconds an idle keep-alive connection is kept
GREETING = os.environ.get("GREETING", "hello")
in_flight = 0
draining = False


class Counted(tornado.web.RequestHandler):
    """Counts requests in flight, so that a drain knows when it is done."""

    def prepare(self):
        global in_flight
        in_flight += 1
        if draining:
            self.set_header("Connection", "close")  # move keep-alive clients to a sibling

    def on_finish(self):
        global in_flight
        in_flight -= 1


class Hello(Counted):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write("%s from tornado\n" % GREETING)


class Sleep(Counted):
    async def get(self):
        try:
            seconds = min(max(float(self.get_argument("s", "1")), 0.0), 10.0)
        except ValueError:
            seconds = 1.0
        await asyncio.sleep(seconds)
        self.write("%s from tornado\n" % GREETING)


async def main():
    app = tornado.web.Application([(r"/", Hello), (r"/sleep", Sleep)])
    server = tornado.httpserver.HTTPServer(app, idle_connection_timeout=KEEPALIVE)
    socks = sdnotify.listen_sockets()
    for sock in socks:
        # Tornado accepts until EAGAIN: a blocking socket would stall the
        # IOLoop in accept() once sibling workers have taken the connections.
        sock.setblocking(False)
    server.add_sockets(socks)

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

    global draining
    draining = True
    sdnotify.notify("STOPPING=1")
    server.stop()  # stop accepting; sibling workers keep the socket
    deadline = time.monotonic() + sdnotify.DRAIN_SECONDS
    while in_flight > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await server.close_all_connections()  # only idle ones are left
    if ping_every:
        pinger.cancel()


if __name__ == "__main__":
    asyncio.run(main())
