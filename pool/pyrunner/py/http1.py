# hfork's Python runner, part 2: a lean HTTP/1.1 server for WSGI on a
# blocking socket (real or green). One Conn serves one request at a time;
# the classes decide who calls serve_one and when.

from urllib.parse import unquote_to_bytes

STATUS_TEXT = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
               431: "Request Header Fields Too Large", 500: "Internal Server Error",
               501: "Not Implemented", 505: "HTTP Version Not Supported"}


class HTTPError(Exception):
    def __init__(self, status):
        self.status = status


class Closed(Exception):
    """The client left (or closed cleanly between requests)."""


_date_cache = [0, b""]


def http_date():
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0] = now
        _date_cache[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
    return _date_cache[1]


class ErrorStream:
    """wsgi.errors: lines become log records."""

    def __init__(self, log):
        self.out = LineLog(log, "wsgi.errors")

    def write(self, s):
        return self.out.write(s)

    def writelines(self, seq):
        for s in seq:
            self.out.write(s)

    def flush(self):
        pass


class Conn:
    """One client connection: its socket, bytes read ahead, and who it is."""

    __slots__ = ("sock", "buf", "remote", "port", "server", "idle_since", "got_data", "busy", "requests")

    def __init__(self, sock, addr, server):
        self.sock = sock
        self.buf = b""
        if isinstance(addr, tuple):
            self.remote, self.port = str(addr[0]), str(addr[1])
        else:
            self.remote, self.port = "", ""
        self.server = server  # (name, port) for SERVER_NAME and SERVER_PORT
        self.idle_since = time.monotonic()
        self.got_data = False
        self.busy = False
        self.requests = 0

    def has_request(self):
        return b"\r\n\r\n" in self.buf

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def server_of(lsock):
    try:
        name = lsock.getsockname()
    except OSError:
        return ("localhost", "0")
    if isinstance(name, tuple):
        return (str(name[0]), str(name[1]))
    return ("localhost", "0")


class WSGIServer:
    """Serves one WSGI app; the same code for sync, thread, gevent and
    eventlet (under the green classes the socket calls yield)."""

    def __init__(self, worker, app, multithread):
        self.w = worker
        self.app = app
        self.errors = ErrorStream(worker.log)
        self.multithread = multithread
        self.seq = 0

    def read_head(self, c):
        """The request head, or Closed when the client leaves first."""
        sock = c.sock
        while True:
            i = c.buf.find(b"\r\n\r\n")
            if i > self.w.max_header:
                raise HTTPError(431)
            if i >= 0:
                head = c.buf[:i]
                c.buf = c.buf[i + 4:]
                return head
            if len(c.buf) > self.w.max_header:
                raise HTTPError(431)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if c.buf.strip():
                    raise HTTPError(408)
                raise Closed()
            except OSError:
                raise Closed()
            if not data:
                raise Closed()
            c.got_data = True
            c.buf += data
            if c.buf[:2] == b"\r\n":  # stray CRLF between requests (RFC 9112 2.2)
                c.buf = c.buf.lstrip(b"\r\n")

    def read_exact(self, c, n):
        while len(c.buf) < n:
            data = c.sock.recv(max(65536, n - len(c.buf)))
            if not data:
                raise Closed()
            c.buf += data
        out, c.buf = c.buf[:n], c.buf[n:]
        return out

    def read_line(self, c):
        while True:
            i = c.buf.find(b"\r\n")
            if i >= 0:
                line, c.buf = c.buf[:i], c.buf[i + 2:]
                return line
            if len(c.buf) > 8192:
                raise HTTPError(400)
            data = c.sock.recv(65536)
            if not data:
                raise Closed()
            c.buf += data

    def read_chunked(self, c):
        parts, total = [], 0
        while True:
            line = self.read_line(c)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HTTPError(400)
            if size == 0:
                while self.read_line(c):  # trailers
                    pass
                return b"".join(parts)
            total += size
            if self.w.max_body and total > self.w.max_body:
                raise HTTPError(413)
            parts.append(self.read_exact(c, size))
            if self.read_exact(c, 2) != b"\r\n":
                raise HTTPError(400)

    def parse(self, c, head):
        lines = head.split(b"\r\n")
        try:
            method, target, proto = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise HTTPError(400)
        if proto not in ("HTTP/1.1", "HTTP/1.0"):
            raise HTTPError(505 if proto.startswith("HTTP/") else 400)
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        environ = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query, "RAW_URI": target, "REQUEST_URI": target,
            "SERVER_PROTOCOL": proto, "SERVER_NAME": c.server[0], "SERVER_PORT": c.server[1],
            "REMOTE_ADDR": c.remote, "REMOTE_PORT": c.port,
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": self.errors,
            "wsgi.multithread": self.multithread, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name[-1:] in (b" ", b"\t"):
                raise HTTPError(400)
            key = name.decode("latin-1").upper()
            if "_" in key:  # ambiguous with "-" once in the environ: dropped, as gunicorn does
                continue
            key = key.replace("-", "_")
            value = value.strip().decode("latin-1")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                environ[key] = value
                continue
            key = "HTTP_" + key
            if key in environ:
                environ[key] += "," + value
            else:
                environ[key] = value
        return environ

    def serve_one(self, c, may_keep):
        """Reads and answers one request. True: the connection stays open for
        the next one."""
        try:
            head = self.read_head(c)
        except Closed:
            return False
        except HTTPError as e:
            self.error(c, e.status)
            return False
        c.busy = True
        try:
            return self._serve(c, head, may_keep)
        finally:
            c.busy = False
            c.idle_since = time.monotonic()
            c.got_data = bool(c.buf)

    def _serve(self, c, head, may_keep):
        w = self.w
        start = time.time()
        try:
            env = self.parse(c, head)
        except HTTPError as e:
            self.error(c, e.status)
            return False
        proto = env["SERVER_PROTOCOL"]
        conn_hdr = env.get("HTTP_CONNECTION", "").lower()
        if proto == "HTTP/1.1":
            keep = "close" not in conn_hdr
        else:
            keep = "keep-alive" in conn_hdr
        try:
            if "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower():
                env.pop("CONTENT_LENGTH", None)
                if env.get("HTTP_EXPECT", "").lower() == "100-continue" and not c.buf:
                    c.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = self.read_chunked(c)
            else:
                cl = env.get("CONTENT_LENGTH", "")
                n = 0
                if cl:
                    if not cl.isdigit():
                        raise HTTPError(400)
                    n = int(cl)
                if w.max_body and n > w.max_body:
                    raise HTTPError(413)
                if n and env.get("HTTP_EXPECT", "").lower() == "100-continue" and len(c.buf) < n:
                    c.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = self.read_exact(c, n) if n else b""
        except HTTPError as e:
            self.error(c, e.status)
            return False
        except (Closed, OSError):
            return False
        env["wsgi.input"] = io.BytesIO(body)
        self.seq += 1
        key = (id(c), self.seq)
        w.stats.begin(key, env["REQUEST_METHOD"] + " " + env["RAW_URI"])
        state = {"status": None, "headers": None, "sent": False, "keep": keep and may_keep, "chunked": False,
                 "head_only": env["REQUEST_METHOD"] == "HEAD", "bytes": 0, "length": None,
                 "proto11": proto == "HTTP/1.1"}
        code = 500
        try:
            code = self.run_app(c, env, state)
        except (Closed, OSError):
            state["keep"] = False
        finally:
            w.stats.end(key)
        end = time.time()
        w.stats.observe(code, state["bytes"], end - start)
        if w.access.enabled:
            w.access.log(c.remote, env["REQUEST_METHOD"], env["RAW_URI"], proto, code, state["bytes"],
                         env.get("HTTP_REFERER", ""), env.get("HTTP_USER_AGENT", ""), env.get("HTTP_HOST", ""),
                         start, end)
        c.requests += 1
        # What the response promised, even if a drain began since: closing a
        # connection whose response said keep-alive loses the request the
        # client may already have sent on it (the next one gets the close).
        return state["keep"]

    def run_app(self, c, env, state):
        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if state["sent"]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state["status"] is not None:
                raise AssertionError("start_response called twice without exc_info")
            state["status"] = status
            state["headers"] = headers
            return write

        def write(data):
            self.send(c, state, data, False)

        try:
            result = self.app(env, start_response)
        except Exception as e:
            self.w.log.error("app raised", request=env["REQUEST_METHOD"] + " " + env["RAW_URI"], err=exception_tail(e, 8))
            if not state["sent"]:
                self.error(c, 500)
            state["keep"] = False
            return 500
        try:
            if type(result) is list and len(result) == 1 and not state["sent"]:
                self.send(c, state, result[0], True)
            else:
                for chunk in result:
                    if chunk:
                        self.send(c, state, chunk, False)
                self.send(c, state, b"", True)
        except (Closed, OSError):
            raise
        except Exception as e:
            self.w.log.error("app raised", request=env["REQUEST_METHOD"] + " " + env["RAW_URI"], err=exception_tail(e, 8))
            if not state["sent"]:
                self.error(c, 500)
            state["keep"] = False
            return 500
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as e:
                    self.w.log.error("app close raised", err=exception_tail(e))
        try:
            return int(state["status"][:3])
        except (TypeError, ValueError):
            return 500

    def send(self, c, state, data, last):
        """Writes data; the first call also writes the head, with
        Content-Length when the whole body is known, else chunked (HTTP/1.1)
        or close-delimited."""
        if not state["sent"]:
            if state["status"] is None:
                raise AssertionError("the app returned before it called start_response")
            state["sent"] = True
            out = ["HTTP/1.1 " + state["status"] + "\r\n"]
            length = None
            conn_close = False
            for k, v in state["headers"]:
                lk = k.lower()
                if lk == "content-length":
                    length = v
                    continue
                elif lk == "connection":
                    if "close" in v.lower():
                        conn_close = True
                    continue
                elif lk == "transfer-encoding":
                    continue
                out.append(k + ": " + v + "\r\n")
            code = state["status"][:3]
            bodiless = state["head_only"] or code in ("204", "304") or code[0] == "1"
            if length is not None:
                out.append("Content-Length: " + length + "\r\n")
                state["length"] = length
            elif last:
                if not bodiless or state["head_only"]:
                    out.append("Content-Length: %d\r\n" % len(data))
            elif not bodiless:
                if state["keep"] and state["proto11"]:
                    state["chunked"] = True
                    out.append("Transfer-Encoding: chunked\r\n")
                else:
                    state["keep"] = False
            if conn_close or self.w.draining:
                state["keep"] = False
            if not state["keep"]:
                out.append("Connection: close\r\n")
            head = "".join(out).encode("latin-1") + b"Date: " + http_date() + b"\r\n\r\n"
            if state["head_only"] or bodiless:
                c.sock.sendall(head)
                return
            if state["chunked"]:
                if data:
                    state["bytes"] += len(data)
                    head += b"%x\r\n" % len(data) + data + b"\r\n"
                if last:
                    head += b"0\r\n\r\n"
                c.sock.sendall(head)
                return
            state["bytes"] += len(data)
            c.sock.sendall(head + data if data else head)
            return
        if state["head_only"]:
            return
        if state["chunked"]:
            buf = b""
            if data:
                state["bytes"] += len(data)
                buf = b"%x\r\n" % len(data) + data + b"\r\n"
            if last:
                buf += b"0\r\n\r\n"
            if buf:
                c.sock.sendall(buf)
            return
        if data:
            state["bytes"] += len(data)
            c.sock.sendall(data)

    def error(self, c, status):
        body = ("%d %s\n" % (status, STATUS_TEXT.get(status, "Error"))).encode()
        head = "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n" % (
            status, STATUS_TEXT.get(status, "Error"), len(body))
        try:
            c.sock.sendall(head.encode() + b"Date: " + http_date() + b"\r\n\r\n" + body)
        except OSError:
            pass

