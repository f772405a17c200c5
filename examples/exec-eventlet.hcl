# hfork example: wsgi_eventlet.py as an exec pool (eventlet.wsgi, green threads; gunicorn -k eventlet).
#
#   apt-get install python3-eventlet
#   go run ./cmd/hfork -f examples/exec-eventlet.hcl
#   curl localhost:8092/
#
# Debian installs python3-eventlet for /usr/bin/python3; with a virtualenv, put
# its python here instead. -B: no __pycache__ next to the apps.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "eventlet" {
  bind    = "127.0.0.1:8092"
  class   = "exec"
  workers = 2
  command = ["/usr/bin/python3", "-B", "apps/wsgi_eventlet.py"]
  env     = { GREETING = "hello" }
  timeout = "10s" # watchdog: the app pings every 5s from its event loop
}
