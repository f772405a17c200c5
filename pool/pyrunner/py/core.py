# hfork's Python runner, part 1: the worker protocol.
#
# The runner is several files that hfork joins, in name order, into one
# program and pipes to the interpreter: they share one namespace and use only
# the standard library here (each class imports its framework when chosen).
#
# The master starts `python /dev/fd/N` with the listening sockets as fds 3..
# (LISTEN_FDS), the control pipe's read end at HFORK_CONTROL_FD (the Spec as
# the first JSON line, then commands; EOF: the master is gone) and
# NOTIFY_SOCKET for READY=1, STOPPING=1 and the heartbeat with its counters.

import io
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback

SD_LISTEN_FDS_START = 3


def read_spec():
    """The first line of the control pipe: the listener's resolved config."""
    fd = int(os.environ["HFORK_CONTROL_FD"])
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(fd, 65536)
        if not chunk:
            raise SystemExit("hfork runner: control pipe closed before the spec arrived")
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return fd, json.loads(line), rest


def seconds(ns):
    """A Go time.Duration (nanoseconds in JSON) in seconds."""
    return (ns or 0) / 1e9


# ---- logging: records in the master's format, written whole to stderr ----

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR"}
TINT_NAMES = {10: "DBG", 20: "\x1b[92mINF\x1b[0m", 30: "\x1b[93mWRN\x1b[0m", 40: "\x1b[91mERR\x1b[0m"}


class Log:
    def __init__(self, level, fmt, attrs):
        self.level = LEVELS.get(level, 20)
        self.fmt = fmt
        self.attrs = attrs
        self.lock = threading.Lock()

    def apply(self, cmd):
        if cmd.get("log_level"):
            self.level = LEVELS.get(cmd["log_level"], self.level)
        if cmd.get("log_format"):
            self.fmt = cmd["log_format"]

    def _text_value(self, v):
        s = v if isinstance(v, str) else json.dumps(v)
        if s == "" or any(c in s for c in ' ="\n\t') or not s.isprintable():
            return json.dumps(s)
        return s

    def record(self, level, msg, **kv):
        if level < self.level:
            return
        now = time.time()
        items = list(self.attrs.items()) + list(kv.items())
        if self.fmt == "json":
            rec = {"time": iso_time(now, ms=True), "level": LEVEL_NAMES[level], "msg": msg}
            for k, v in items:
                rec[k] = v
            line = json.dumps(rec, default=str, separators=(",", ":"))
        elif self.fmt == "tint":
            parts = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)), TINT_NAMES[level], msg]
            parts += ["\x1b[2m%s=\x1b[0m%s" % (k, self._text_value(v)) for k, v in items]
            line = " ".join(parts)
        else:
            parts = ["time=" + iso_time(now, ms=True), "level=" + LEVEL_NAMES[level], "msg=" + self._text_value(msg)]
            parts += ["%s=%s" % (k, self._text_value(v)) for k, v in items]
            line = " ".join(parts)
        data = (line + "\n").encode("utf-8", "replace")
        with self.lock:
            try:
                os.write(2, data)
            except OSError:
                pass

    def debug(self, msg, **kv):
        self.record(10, msg, **kv)

    def info(self, msg, **kv):
        self.record(20, msg, **kv)

    def warn(self, msg, **kv):
        self.record(30, msg, **kv)

    def error(self, msg, **kv):
        self.record(40, msg, **kv)


def iso_time(t, ms=False):
    lt = time.localtime(t)
    off = lt.tm_gmtoff
    zone = "Z" if off == 0 else "%s%02d:%02d" % ("+" if off > 0 else "-", abs(off) // 3600, abs(off) % 3600 // 60)
    frac = ".%03d" % (int(t * 1000) % 1000) if ms else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + frac + zone


class LineLog(io.TextIOBase):
    """sys.stdout and sys.stderr of the app: each line one log record with
    its stream, so a print() or a traceback reaches the master's log whole."""

    def __init__(self, log, stream):
        self.log = log
        self.stream = stream
        self.buf = ""
        self.lock = threading.Lock()

    def writable(self):
        return True

    def write(self, s):
        with self.lock:
            self.buf += s
            while "\n" in self.buf:
                line, self.buf = self.buf.split("\n", 1)
                self.log.info(line, stream=self.stream)
        return len(s)

    def flush(self):
        pass


# ---- sockets and notify ----

def listen_sockets():
    n = int(os.environ.get("LISTEN_FDS", "0"))
    if n < 1:
        raise SystemExit("hfork runner: no LISTEN_FDS")
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n):
        family = socket.socket(fileno=os.dup(fd))
        fam = family.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        family.close()
        # The socket's O_NONBLOCK belongs to the one open file the master and
        # every sibling share. hfork's master makes it non-blocking; saying so
        # again is harmless, and a socket handed over blocking (systemd) must
        # not make an accept wait for a connection a sibling took. Never
        # setblocking(True) on a listening socket.
        # (On the fd, not the socket object: a green socket's setblocking
        # would also set its timeout to zero and make accept spin.)
        os.set_blocking(fd, False)
        s = socket.socket(fam, socket.SOCK_STREAM, 0, fileno=fd)
        s.set_inheritable(False)
        if fam in (socket.AF_INET, socket.AF_INET6):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    return socks


class Notifier:
    def __init__(self):
        addr = os.environ.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.addr = addr
        self.sock = None
        if addr:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.settimeout(2)

    def send(self, state):
        if self.sock is None:
            return
        try:
            self.sock.sendto(state.encode("utf-8", "replace"), self.addr)
        except OSError:
            pass


def heartbeat_interval(timeout):
    """As the built-in workers: a second, a quarter of timeout when shorter,
    never under 100ms."""
    d = 1.0
    if timeout > 0:
        d = min(d, timeout / 4)
    return max(d, 0.1)


# The request duration histogram's upper bounds in seconds: the master's
# wire.DurationBuckets (a test compares the two).
DURATION_BUCKETS = (0.001, 0.005, 0.010, 0.025, 0.050, 0.100, 0.250, 0.500, 1.0, 2.5, 5.0, 10.0)


class Stats:
    """Requests served and in flight, for the heartbeat and max_requests,
    and the metrics counters the master sums: answers by status class,
    durations and body bytes, cumulative since the worker started."""

    def __init__(self, max_requests, jitter):
        self.served = 0
        self.codes = [0] * 5
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.dur_us = 0
        self.bytes = 0
        self.inflight = {}
        self.lock = threading.Lock()
        self.limit = 0
        if max_requests > 0:
            self.limit = max_requests + random.randint(0, max(jitter, 0))
        self.recycle_sent = False

    def begin(self, key, what):
        self.inflight[key] = (time.monotonic(), what)

    def end(self, key):
        self.inflight.pop(key, None)
        with self.lock:  # threads of the thread class count here at once
            self.served += 1

    def observe(self, status, nbytes, seconds):
        """Counts one answered request for the metrics."""
        b = 0
        while b < len(DURATION_BUCKETS) and seconds > DURATION_BUCKETS[b]:
            b += 1
        with self.lock:
            self.codes[min(max(int(status) // 100, 1), 5) - 1] += 1
            self.buckets[b] += 1
            if seconds > 0:
                self.dur_us += int(seconds * 1e6)
            if nbytes and nbytes > 0:
                self.bytes += int(nbytes)

    def metric_lines(self):
        """The counters as heartbeat lines: an app listener is one route
        ("/"), then five zeros for requests no route matched."""
        with self.lock:
            codes, buckets, dur_us, nbytes = list(self.codes), list(self.buckets), self.dur_us, self.bytes
        return ["X_HFORK_CODES=" + ",".join(str(n) for n in codes + [0] * 5),
                "X_HFORK_DURATION=" + ",".join(str(n) for n in buckets + [dur_us]),
                "X_HFORK_BYTES=%d" % nbytes]

    def snapshot(self):
        now = time.monotonic()
        oldest, what = 0.0, ""
        for start, w in list(self.inflight.values()):
            age = now - start
            if age > oldest:
                oldest, what = age, w
        return len(self.inflight), oldest, what


class Worker:
    """What every class shares: spec, log, notify, stats, access log, drain
    flag. A class sets serve() and calls ready() once it accepts."""

    def __init__(self, spec, ctl_fd):
        self.spec = spec
        self.l = spec["listener"]
        self.ctl_fd = ctl_fd
        self.cls = self.l["class"]
        self.log = Log(spec.get("log_level", "info"), spec.get("log_format", "json"),
                       {"listener": self.l["name"], "pid": os.getpid(), "gen": spec.get("gen", 0), "class": self.cls})
        self.notifier = Notifier()
        self.stats = Stats(self.l.get("max_requests", 0), self.l.get("max_requests_jitter", 0))
        self.timeout = seconds(self.l.get("timeout"))
        self.keepalive = seconds(self.l.get("keepalive"))
        self.graceful = seconds(self.l.get("graceful_timeout")) or 30.0
        self.header_timeout = seconds(self.l.get("read_header_timeout")) or 10.0
        self.max_header = self.l.get("max_header_bytes") or (1 << 20)
        self.max_body = self.l.get("max_body_bytes") or 0
        self.conns = self.l.get("worker_connections") or 1000
        self.threads = self.l.get("threads") or 1
        self.draining = False
        self.drain_started = 0.0
        self.is_ready = False
        self.access = AccessLog(self.l.get("access_log") or {})

    def ready(self):
        self.is_ready = True
        self.notifier.send("READY=1\nSTATUS=serving")
        self.log.debug("app serving", app=self.l["app"], python=sys.executable)

    def beat(self):
        """One heartbeat: WATCHDOG=1 and the counters; X_HFORK_RECYCLE=1 once
        max_requests is reached. Also flushes the access log."""
        n, oldest, what = self.stats.snapshot()
        lines = ["WATCHDOG=1", "X_HFORK_REQUESTS=%d" % self.stats.served, "X_HFORK_INFLIGHT=%d" % n,
                 "X_HFORK_OLDEST_MS=%d" % int(oldest * 1000), "X_HFORK_OLDEST_REQ=" + what]
        lines += self.stats.metric_lines()
        if self.stats.limit and self.stats.served >= self.stats.limit and not self.stats.recycle_sent and not self.draining:
            self.stats.recycle_sent = True
            lines.append("X_HFORK_RECYCLE=1")
            self.log.info("worker reached max_requests", requests=self.stats.served)
        if self.is_ready:
            self.notifier.send("\n".join(lines))
        self.access.flush()

    def begin_drain(self):
        if self.draining:
            return False
        self.draining = True
        self.drain_started = time.monotonic()
        self.notifier.send("STOPPING=1")
        self.log.info("worker draining")
        return True

    def command(self, line):
        """A later control-pipe line: log settings; the rest is for
        built-in workers."""
        try:
            cmd = json.loads(line)
        except ValueError:
            return
        self.log.apply(cmd)

    def control_reader(self):
        """Reads commands until EOF, then ends the process at once: a worker
        never outlives its master. Run in a real thread (sync, thread)."""
        buf = b""
        while True:
            try:
                chunk = os.read(self.ctl_fd, 4096)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                os._exit(1)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.command(line)

    def finish(self):
        self.access.close()
        took = time.monotonic() - self.drain_started if self.draining else 0.0
        self.log.info("worker drained", took="%.3fs" % took, requests=self.stats.served)


# ---- access log: hfork's combined and json formats ----

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def clf_time(t):
    lt = time.localtime(t)
    off = lt.tm_gmtoff
    return "%02d/%s/%04d:%02d:%02d:%02d %s%02d%02d" % (
        lt.tm_mday, MONTHS[lt.tm_mon - 1], lt.tm_year, lt.tm_hour, lt.tm_min, lt.tm_sec,
        "+" if off >= 0 else "-", abs(off) // 3600, abs(off) % 3600 // 60)


def clf_escape(s):
    if s.isprintable() and '"' not in s and "\\" not in s:
        return s
    out = []
    for ch in s:
        if ch == '"' or ch == "\\" or not ch.isprintable() or ord(ch) > 126:
            out.append("".join("\\x%02X" % b for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


class AccessLog:
    """Lines collect in memory and reach the file once a second (from the
    heartbeat) or when 64 KiB are waiting; every write carries whole lines,
    so the workers of a listener share one O_APPEND file."""

    def __init__(self, cfg):
        self.path = cfg.get("file", "")
        self.json = cfg.get("format") == "json"
        self.fd = -1
        self.pending = []
        self.size = 0
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.open()

    @property
    def enabled(self):
        return self.fd >= 0

    def open(self):
        if self.path == "-":
            self.fd = 1
        elif self.path:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def reopen(self):
        if not self.path or self.path == "-":
            return
        self.flush()
        old = self.fd
        self.open()
        os.close(old)

    def log(self, remote, method, target, proto, status, nbytes, referer, agent, host, start, end):
        ip = remote or ""
        if self.json:
            path, _, query = target.partition("?")
            line = json.dumps({"time": iso_time(end), "remote": ip, "method": method, "path": path, "query": query,
                               "proto": proto, "status": status, "bytes": nbytes,
                               "duration_ms": round((end - start) * 1000, 3), "referer": referer,
                               "user_agent": agent, "host": host}, separators=(",", ":")) + "\n"
        else:
            line = '%s - - [%s] "%s %s %s" %d %d "%s" "%s"\n' % (
                clf_escape(ip) or "-", clf_time(end), clf_escape(method), clf_escape(target), clf_escape(proto),
                status, nbytes, clf_escape(referer) or "-", clf_escape(agent) or "-")
        with self.lock:
            self.pending.append(line)
            self.size += len(line)
            full = self.size >= 65536
        if full:
            self.flush()

    def flush(self):
        if self.fd < 0 or not self.pending:
            return
        with self.lock:
            lines, self.pending, self.size = self.pending, [], 0
        data = "".join(lines).encode("utf-8", "replace")
        with self.write_lock:  # whole lines, in order
            try:
                while data:
                    n = os.write(self.fd, data)
                    data = data[n:]
            except OSError:
                pass

    def close(self):
        self.flush()


# ---- loading the app, gunicorn's way ----

def load_app(spec_str, base_dir):
    """module:callable, module alone (its `application`), or a factory call
    with literal arguments ("app:create_app()", 'app:create("x")')."""
    import ast
    import importlib
    if base_dir and base_dir not in sys.path:
        sys.path.insert(0, base_dir)
    modname, _, expr = spec_str.partition(":")
    expr = expr or "application"
    mod = importlib.import_module(modname)
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as e:
        raise ImportError("%r is not a name or a call in %r: %s" % (expr, spec_str, e)) from None
    args, kwargs = [], {}
    if isinstance(node, ast.Call):
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError:
            raise ImportError("%r: a factory takes only literal arguments" % spec_str) from None
        node, call = node.func, True
    else:
        call = False
    path = []
    while isinstance(node, ast.Attribute):
        path.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ImportError("%r: after the colon give a name or a call, like app or create_app()" % spec_str)
    path.append(node.id)
    obj = mod
    for name in reversed(path):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise ImportError("module %r has no attribute %r" % (modname, name)) from None
    if call:
        obj = obj(*args, **kwargs)
    if obj is None or not callable(obj) and not hasattr(obj, "__call__"):
        raise ImportError("%r is not callable" % spec_str)
    return obj


def exception_tail(exc, lines=3):
    """The last lines of a traceback, for a one-line boot failure."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    flat = "".join(tb).strip().splitlines()
    return " | ".join(l.strip() for l in flat[-lines:])
