# hfork example: tornado_app.py as an exec pool (Tornado on the IOLoop; gunicorn -k tornado).
#
#   apt-get install python3-tornado
#   go run ./cmd/hfork -f examples/exec-tornado.hcl
#   curl localhost:8093/
#
# Debian installs python3-tornado for /usr/bin/python3; with a virtualenv, put
# its python here instead. -B: no __pycache__ next to the apps.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "tornado" {
  bind    = "127.0.0.1:8093"
  class   = "exec"
  workers = 2
  command = ["/usr/bin/python3", "-B", "apps/tornado_app.py"]
  env     = { GREETING = "hello" }
  timeout = "10s" # watchdog: the app pings every 5s from its event loop
}
