# hfork example: one Flask app (apps/flask_app.py) under each WSGI class,
# as gunicorn runs it with -k sync, gthread, gevent and eventlet.
#
#   apt-get install python3-flask python3-gevent python3-eventlet
#   go run ./cmd/hfork -f examples/app-flask.hcl
#   curl localhost:8100/   # sync
#   kill -HUP $(cat examples/hfork.pid)   # new workers on the new code
#
# Debian installs the frameworks for /usr/bin/python3; with a virtualenv,
# set python to its interpreter ("venv/bin/python").

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "sync" {
  bind    = "127.0.0.1:8100"
  app     = "flask_app:app"    # gunicorn flask_app:app
  python  = "/usr/bin/python3"
  dir     = "apps"             # gunicorn --chdir apps
  workers = 2
  timeout = "30s"              # a request running longer gets its worker replaced
  env     = { GREETING = "hello" }
  access_log {
    file = "-"
  }
}

listener "thread" {
  bind               = "127.0.0.1:8101"
  app                = "flask_app:create_app(\"hi\")" # a factory with literal arguments
  class              = "thread"                      # gunicorn -k gthread
  threads            = 8
  worker_connections = 1000
  keepalive          = "5s"
  python             = "/usr/bin/python3"
  dir                = "apps"
  workers            = 2
  max_requests        = 10000 # gunicorn --max-requests
  max_requests_jitter = 1000
}

listener "gevent" {
  bind               = "127.0.0.1:8102"
  app                = "flask_app:app"
  class              = "gevent"
  worker_connections = 1000
  python             = "/usr/bin/python3"
  dir                = "apps"
  workers            = 2
}

listener "eventlet" {
  bind    = "127.0.0.1:8103"
  app     = "flask_app:app"
  class   = "eventlet"
  python  = "/usr/bin/python3"
  dir     = "apps"
  workers = 2
}
