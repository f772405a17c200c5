"""wsgi_eventlet.py: wsgiapp.app under eventlet.wsgi as an hfork exec worker
(what gunicorn's "-k eventlet" worker does, with hfork as the arbiter).

    listener "eventlet" {
      class   = "exec"
      command = ["python3", "apps/wsgi_eventlet.py"]
    }

Green threads serve up to MAX_CONNECTIONS connections per worker. On
SIGTERM it says STOPPING=1, closes its copy of the listening socket,
answers requests still arriving on keep-alive connections with
"Connection: close", waits up to DRAIN_SECONDS for in-flight requests, and
exits; idle keep-alive connections end after KEEPALIVE seconds at most.

The accept loop is ours, not eventlet.wsgi.server(): when that one stops,
eventlet 0.33 closes every open connection as if it were idle, in-flight
requests included.
"""

import eventlet

eventlet.monkey_patch()  # first, before anything imports socket or time

import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import eventlet.wsgi  # noqa: E402

import sdnotify  # noqa: E402
from wsgiapp import app  # noqa: E402

MAX_CONNECTIONS = 1000  # like gunicorn's worker_connections
KEEPALIVE = 5.0  # seconds a connection may stay silent (idle keep-alive included)
draining = False


class Protocol(eventlet.wsgi.HttpProtocol):
    def handle_one_response(self):
        if draining:
            # Say "Connection: close" and close after this response, so a
            # keep-alive client moves to a sibling worker.
            self.close_connection = 1
        return super().handle_one_response()


class Stop(Exception):
    """Thrown into an accept loop to end it."""


def accept_loop(sock, pool):
    # keepalive, debug: no tracebacks in 500 responses; no access log (like
    # gunicorn's default); errors go to stderr, which hfork logs.
    server = eventlet.wsgi.Server(sock, sock.getsockname(), app, log=sys.stderr, protocol=Protocol,
                                  log_output=False, debug=False, socket_timeout=KEEPALIVE)
    try:
        while True:
            conn, addr = sock.accept()  # green: yields until a connection comes
            conn.settimeout(KEEPALIVE)
            pool.spawn(server.process_request, [addr, conn, eventlet.wsgi.STATE_IDLE])
    except Stop:
        sock.close()  # our copy: sibling workers keep accepting


def main():
    global draining
    pool = eventlet.GreenPool(MAX_CONNECTIONS)
    acceptors = [eventlet.spawn(accept_loop, sock, pool) for sock in sdnotify.listen_sockets()]

    # A Python signal handler may run inside any green thread, where
    # switching is unsafe: it only sets a flag that the loop below polls
    # (as gunicorn's eventlet worker does).
    stop_requested = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop_requested.append(signum))

    sdnotify.notify("READY=1", "STATUS=serving")
    ping_every = sdnotify.watchdog_interval()
    poll = min(0.25, ping_every) if ping_every else 0.25
    next_ping = 0.0
    while not stop_requested:
        if ping_every and time.monotonic() >= next_ping:
            sdnotify.notify("WATCHDOG=1")  # from the event loop: a stuck loop stops pinging
            next_ping = time.monotonic() + ping_every
        eventlet.sleep(poll)

    draining = True
    sdnotify.notify("STOPPING=1")
    for a in acceptors:
        a.kill(Stop())
    with eventlet.Timeout(sdnotify.DRAIN_SECONDS, False):
        pool.waitall()


if __name__ == "__main__":
    main()
