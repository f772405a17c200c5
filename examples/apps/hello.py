"""hello.py: an hfork exec worker in the Python standard library only.

    listener "py" {
      class   = "exec"
      command = ["python3", "apps/hello.py"]
    }

A thread per connection (http.server), HTTP/1.1 keep-alive, serving every
socket hfork passes in. GET / answers "<GREETING> from python"; GET
/sleep?s=0.5 does the same after sleeping (10 s at most).

On SIGTERM (hfork's default stop_signal) it says STOPPING=1, stops
accepting, lets in-flight requests finish (answering with "Connection:
close"), and exits; idle keep-alive connections are dropped after
KEEPALIVE seconds at most.
"""

import os
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import sdnotify

KEEPALIVE = 5.0  # seconds an idle keep-alive connection is kept
GREETING = os.environ.get("GREETING", "hello")
stopping = threading.Event()


def sleep_seconds(query):
    try:
        return min(max(float(parse_qs(query).get("s", ["1"])[0]), 0.0), 10.0)
    except ValueError:
        return 1.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = KEEPALIVE  # socket timeout: bounds idle keep-alive connections

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/sleep":  # a slow request, to watch a drain wait for it
            time.sleep(sleep_seconds(url.query))
        body = ("%s from python\n" % GREETING).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if stopping.is_set():
            # Draining: this is the connection's last response.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        # A peer on a unix socket has no address.
        return self.client_address[0] if isinstance(self.client_address, tuple) else "unix"

    def log_message(self, fmt, *args):
        # stderr becomes hfork log lines with the listener and pid.
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


class Server(socketserver.ThreadingMixIn, HTTPServer):
    # Track request threads so that server_close() waits for them: that is
    # the "finish in-flight requests" half of a graceful stop.
    daemon_threads = False
    block_on_close = True

    def __init__(self, sock, ping_every):
        # bind_and_activate=False: the socket is hfork's, already listening.
        super().__init__(sock.getsockname(), Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        # Sibling workers accept from the same socket: non-blocking, so losing
        # the race for a connection is an EAGAIN, not a stuck accept().
        sock.setblocking(False)
        self.ping_every = ping_every
        self.next_ping = 0.0

    def server_bind(self):  # never bind: see bind_and_activate above
        pass

    def service_actions(self):
        # Called by serve_forever() between polls, so a wedged accept loop
        # stops the pings and hfork replaces the worker.
        if self.ping_every and time.monotonic() >= self.next_ping:
            sdnotify.notify("WATCHDOG=1")
            self.next_ping = time.monotonic() + self.ping_every


def main():
    ping_every = sdnotify.watchdog_interval()
    poll = min(0.5, ping_every / 2) if ping_every else 0.5
    servers = [Server(s, ping_every) for s in sdnotify.listen_sockets()]
    loops = [threading.Thread(target=s.serve_forever, args=(poll,)) for s in servers]
    for t in loops:
        t.start()

    def stop(signum, frame):
        if stopping.is_set():
            return
        stopping.set()
        sdnotify.notify("STOPPING=1")
        # shutdown() blocks until serve_forever returns: not in a signal handler.
        for s in servers:
            threading.Thread(target=s.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sdnotify.notify("READY=1", "STATUS=serving")
    for t in loops:
        t.join()
    for s in servers:
        s.server_close()  # closes our copy of the socket, waits for requests
    sys.stderr.write("drained, exiting\n")


if __name__ == "__main__":
    main()
