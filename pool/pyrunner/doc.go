// Package pyrunner is hfork's Python worker program, shipped inside the
// hfork binary: it runs the workers of an `app` listener. The master pipes
// Source to the listener's interpreter (`python /dev/fd/N`), so there is
// nothing to install or copy next to the app.
//
// Inside, the runner speaks the same worker protocol as the built-in
// workers: sockets from LISTEN_FDS, the Spec as the first JSON line of the
// control pipe (HFORK_CONTROL_FD), READY=1 only once the app is imported
// (and, for ASGI, its lifespan started), a heartbeat with the X_HFORK_*
// counters, X_HFORK_RECYCLE=1 at max_requests, STOPPING=1 and a drain on
// SIGTERM. It serves the app under its class: sync, thread, gevent,
// eventlet (its own HTTP/1.1 server for WSGI), tornado, aiohttp and asgi
// (the framework's server, or uvicorn's protocol layer for asgi).
//
// Invariants:
//
//   - The runner uses Python's standard library and the framework of its
//     class, nothing else: the user's interpreter needs only their app.
//   - READY=1 means the app imported and the sockets are being served; a
//     failure before it is one log line naming the interpreter, the app
//     and the exception, and exit status 3.
//   - The listening sockets stay non-blocking: their O_NONBLOCK belongs to
//     the one open file the master and every sibling share.
package pyrunner
