"""flask_app.py: a small Flask app for hfork's app listeners (and for
gunicorn in the comparison: gunicorn flask_app:app).

  GET /              "<GREETING> from flask\n" (GREETING from the environment)
  GET /sleep?s=0.5   the same after sleeping that long (at most 60 s)
  GET /pid           the worker's pid
"""

import os
import time

from flask import Flask, request

GREETING = os.environ.get("GREETING", "hello")

app = Flask(__name__)


@app.get("/")
def index():
    return GREETING + " from flask\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/sleep")
def sleep():
    try:
        seconds = min(max(float(request.args.get("s", "1")), 0.0), 60.0)
    except ValueError:
        seconds = 1.0
    time.sleep(seconds)
    return GREETING + " from flask\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/pid")
def pid():
    return "%d\n" % os.getpid(), 200, {"Content-Type": "text/plain"}


def create_app(greeting=None):
    """A factory, as in app = "flask_app:create_app(\"hi\")"."""
    global GREETING
    if greeting is not None:
        GREETING = greeting
    return app
