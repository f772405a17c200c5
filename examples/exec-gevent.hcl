# hfork example: wsgi_gevent.py as an exec pool (gevent.pywsgi, greenlets; gunicorn -k gevent).
#
#   apt-get install python3-gevent
#   go run ./cmd/hfork -f examples/exec-gevent.hcl
#   curl localhost:8091/
#
# Debian installs python3-gevent for /usr/bin/python3; with a virtualenv, put
# its python here instead. -B: no __pycache__ next to the apps.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "gevent" {
  bind    = "127.0.0.1:8091"
  class   = "exec"
  workers = 2
  command = ["/usr/bin/python3", "-B", "apps/wsgi_gevent.py"]
  env     = { GREETING = "hello" }
  timeout = "10s" # watchdog: the app pings every 5s from its event loop
}
