# hfork's Python runner, last part: pick the class, load the app, serve.

FRAMEWORK = {"gevent": "gevent", "eventlet": "eventlet", "tornado": "tornado", "aiohttp": "aiohttp", "asgi": "asyncio"}


def boot_failed(w, what, exc, **kv):
    """One log line that names the interpreter, the app and the exception,
    then exit: the master reports it as the worker's boot failure."""
    w.log.error(what, python=sys.executable, app=w.l["app"], err=exception_tail(exc), **kv)
    w.access.close()
    os._exit(3)


def not_dumpable():
    """PR_SET_DUMPABLE 0, as hfork's built-in workers set it: no core file,
    and no other process of the worker's uid may ptrace it or read its
    memory. The kernel resets it on execve, so the master cannot set it for
    the runner. Returns why it failed, or None."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
            return os.strerror(ctypes.get_errno())
    except (ImportError, OSError, AttributeError) as e:
        return str(e)
    return None


def main():
    # First, before the Spec or the app's import can bring anything secret.
    dumpable = not_dumpable()
    # The program came on a pipe: its "directory" is /dev/fd, not a place
    # to import from.
    if sys.path and sys.path[0] in ("/dev/fd", "/proc/self/fd"):
        sys.path.pop(0)
    src = os.environ.pop("HFORK_PY_SOURCE_FD", "")
    if src:
        try:
            os.close(int(src))
        except OSError:
            pass
    # USR1 (reopen logs) may come while the app still imports; its default
    # action would kill the worker. The class's handler takes over later.
    booting = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: [x.access.reopen() for x in booting])
    ctl_fd, spec, rest = read_spec()
    w = Worker(spec, ctl_fd)
    booting.append(w)
    if dumpable:
        w.log.warn("worker stays dumpable", err=dumpable)
    for line in rest.split(b"\n"):
        if line.strip():
            w.command(line)
    cls = w.cls
    try:
        # Before any socket exists and before the app imports anything.
        if cls == "gevent":
            from gevent import monkey
            monkey.patch_all()
        elif cls == "eventlet":
            import eventlet
            eventlet.monkey_patch()
        elif cls in FRAMEWORK:
            __import__(FRAMEWORK[cls])
    except ImportError as e:
        boot_failed(w, "class %s needs %s, which this interpreter cannot import" % (cls, FRAMEWORK[cls]), e)
    sys.stdout = LineLog(w.log, "stdout")
    sys.stderr = LineLog(w.log, "stderr")
    lsocks = listen_sockets()
    module = w.l["app"].partition(":")[0]
    try:
        app = load_app(w.l["app"], w.l.get("dir") or os.getcwd())
    except BaseException as e:
        boot_failed(w, "app failed to load", e, module=module)
    serve = SERVE.get(cls)
    if serve is None:
        w.log.error("unknown class", python=sys.executable)
        os._exit(3)
    try:
        serve(w, app, lsocks)
    except BaseException as e:
        if not w.is_ready:
            boot_failed(w, "class %s cannot serve the app" % cls, e)
        w.log.error("worker failed", err=exception_tail(e, 8))
        w.access.close()
        os._exit(1)
    os._exit(0)


SERVE = {
    "sync": serve_sync,
    "thread": serve_thread,
    "gevent": lambda w, app, lsocks: serve_green(w, app, lsocks, "gevent"),
    "eventlet": lambda w, app, lsocks: serve_green(w, app, lsocks, "eventlet"),
    "tornado": serve_tornado,
    "aiohttp": serve_aiohttp,
    "asgi": serve_asgi,
}


main()
