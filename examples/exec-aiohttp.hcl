# hfork example: aiohttp_app.py as an exec pool (aiohttp on asyncio; gunicorn -k aiohttp.GunicornWebWorker (gaiohttp)).
#
#   apt-get install python3-aiohttp
#   go run ./cmd/hfork -f examples/exec-aiohttp.hcl
#   curl localhost:8094/
#
# Debian installs python3-aiohttp for /usr/bin/python3; with a virtualenv, put
# its python here instead. -B: no __pycache__ next to the apps.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "aiohttp" {
  bind    = "127.0.0.1:8094"
  class   = "exec"
  workers = 2
  command = ["/usr/bin/python3", "-B", "apps/aiohttp_app.py"]
  env     = { GREETING = "hello" }
  timeout = "10s" # watchdog: the app pings every 5s from its event loop
}
