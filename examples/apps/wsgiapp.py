"""wsgiapp.py: the one WSGI app that the gevent and eventlet examples serve,
and that gunicorn serves in the comparison (gunicorn -k gevent wsgiapp:app).

  GET /              "<GREETING> from wsgi\n" (GREETING from the environment)
  GET /sleep?s=0.5   the same after sleeping that long (at most 10 s): a
                     request that is still in flight when a worker drains

It blocks in time.sleep on purpose: under gevent or eventlet (which patch
the standard library) that yields to other connections, as real apps do
when they wait on a database.
"""

import os
import time
from urllib.parse import parse_qs

GREETING = os.environ.get("GREETING", "hello")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/sleep":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            seconds = min(max(float(query.get("s", ["1"])[0]), 0.0), 10.0)
        except ValueError:
            seconds = 1.0
        time.sleep(seconds)
    elif path != "/":
        body = b"not found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    body = ("%s from wsgi\n" % GREETING).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
