"""The worker side of hfork's exec protocol, in the Python standard library.

hfork (like systemd) hands an exec worker its listening sockets and a way to
report back:

  LISTEN_FDS=N        the sockets are fds 3 .. 3+N-1, already bound and listening
  LISTEN_PID=pid      they are meant for this pid (not for a child we spawn)
  NOTIFY_SOCKET=addr  a unix datagram socket; "@name" is Linux's abstract namespace
  WATCHDOG_USEC=n     when set, send WATCHDOG=1 at least every n microseconds

The worker never opens a port of its own: every worker of a pool shares the
master's sockets, which is what lets hfork replace workers without refusing a
connection. It says READY=1 once it serves, so hfork only retires the old
workers of a reload after the new ones can take over.

Sharing goes deep: a socket's blocking mode belongs to the one open file
that the master and all workers hold, so a worker must never make it
blocking (socket.socket(fileno=...) leaves it as it is: non-blocking).

Every app in this directory imports this module, so the protocol lives in
one place.
"""

import os
import socket

# How long a worker waits for in-flight requests after the stop signal
# before it gives up and exits. Keep it under the listener's
# graceful_timeout (30s unless set), after which hfork sends SIGKILL.
DRAIN_SECONDS = float(os.environ.get("DRAIN_SECONDS", "25"))

SD_LISTEN_FDS_START = 3


def listen_sockets():
    """The inherited listening sockets, or an error that says what is missing."""
    pid = os.environ.get("LISTEN_PID")
    if pid is not None and int(pid) != os.getpid():
        raise SystemExit("LISTEN_PID=%s is not this process (%d): run the program itself, "
                         "not a wrapper that forks it" % (pid, os.getpid()))
    n = int(os.environ.get("LISTEN_FDS", "0"))
    if n < 1:
        raise SystemExit("no LISTEN_FDS: run me as an hfork exec worker "
                         "(or under systemd socket activation)")
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n):
        s = socket.socket(fileno=fd)
        # The family (AF_INET, AF_INET6 or AF_UNIX) comes from the fd, except
        # under eventlet, whose green socket assumes AF_INET.
        family = s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        if s.family != family:
            s = socket.socket(family, socket.SOCK_STREAM, 0, fileno=s.detach())
        s.set_inheritable(False)
        if s.family in (socket.AF_INET, socket.AF_INET6):
            # Accepted connections inherit TCP_NODELAY from the listening
            # socket. Without it, a response written in more than one piece
            # waits for the client's delayed ACK (40 ms on Linux). gunicorn
            # sets it on its sockets; hfork does not (yet) on the ones it
            # passes.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    return socks


def notify(*lines):
    """Send one datagram such as notify("READY=1") or notify("STATUS=…").

    Without NOTIFY_SOCKET it does nothing and returns False, so the app also
    runs under a supervisor that does not listen.
    """
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto("\n".join(lines).encode(), addr)
        except OSError:
            return False
    return True


def watchdog_interval():
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None.

    Send the pings from the loop that serves requests, not from a thread of
    their own: a wedged event loop must stop pinging, so that hfork replaces
    the worker.
    """
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    pid = os.environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid is not None and int(pid) != os.getpid()):
        return None
    return usec / 2 / 1e6
