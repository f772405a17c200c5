"""wsgi_gevent.py: wsgiapp.app under gevent.pywsgi as an hfork exec worker
(what gunicorn's "-k gevent" worker does, with hfork as the arbiter).

    listener "gevent" {
      class   = "exec"
      command = ["python3", "apps/wsgi_gevent.py"]
    }

Greenlets serve up to MAX_CONNECTIONS connections per worker. On SIGTERM it
says STOPPING=1, closes its copy of the listening socket, answers requests
still arriving on keep-alive connections with "Connection: close", waits up
to DRAIN_SECONDS for in-flight requests, and exits; idle keep-alive
connections end after KEEPALIVE seconds at most.
"""

from gevent import monkey

monkey.patch_all()  # first, before anything imports socket or time

import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.pool  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

import sdnotify  # noqa: E402
from wsgiapp import app  # noqa: E402

MAX_CONNECTIONS = 1000  # like gunicorn's worker_connections
KEEPALIVE = 5.0  # seconds a connection may stay silent (idle keep-alive included)
draining = False


class Server(WSGIServer):
    def handle(self, sock, address):
        # pywsgi has no idle timeout of its own; without one an idle
        # keep-alive connection would hold a drain for all of DRAIN_SECONDS.
        sock.settimeout(KEEPALIVE)
        super().handle(sock, address)


def close_when_draining(wsgi_app):
    """Mark each response "Connection: close" once the worker drains, so
    keep-alive clients move to a sibling instead of reusing this connection."""

    def wrapped(environ, start_response):
        if not draining:
            return wsgi_app(environ, start_response)

        def closing_start_response(status, headers, exc_info=None):
            return start_response(status, headers + [("Connection", "close")], exc_info)

        return wsgi_app(environ, closing_start_response)

    return wrapped


def main():
    pool = gevent.pool.Pool(MAX_CONNECTIONS)
    # log=None: no access log (gunicorn's default too); errors still go to
    # stderr, which hfork logs with the listener and pid.
    servers = [Server(sock, close_when_draining(app), spawn=pool, log=None, error_log=sys.stderr)
               for sock in sdnotify.listen_sockets()]
    for s in servers:
        s.start()
    done = gevent.event.Event()

    def drain():
        global draining
        draining = True
        sdnotify.notify("STOPPING=1")
        for s in servers:
            s.close()  # stop accepting; siblings keep serving the socket
        pool.join(timeout=sdnotify.DRAIN_SECONDS)  # in-flight and keep-alive connections
        pool.kill(timeout=1)
        done.set()

    def on_signal():
        if not draining:
            gevent.spawn(drain)

    # gevent's signal handlers run as greenlets in the event loop.
    gevent.signal_handler(signal.SIGTERM, on_signal)
    gevent.signal_handler(signal.SIGINT, on_signal)

    ping_every = sdnotify.watchdog_interval()
    if ping_every:
        def watchdog():
            while True:
                sdnotify.notify("WATCHDOG=1")
                gevent.sleep(ping_every)
        gevent.spawn(watchdog)

    sdnotify.notify("READY=1", "STATUS=serving")
    done.wait()


if __name__ == "__main__":
    main()
