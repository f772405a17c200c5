# hfork example: the asyncio classes: a Tornado app, an aiohttp app and a
# Starlette (ASGI) app, each on its framework's own server (uvicorn's
# protocol layer for ASGI). timeout is liveness here: a worker whose event
# loop stops answering the heartbeat is replaced.
#
#   apt-get install python3-tornado python3-aiohttp python3-starlette python3-uvicorn
#   go run ./cmd/hfork -f examples/app-async.hcl
#   curl localhost:8110/ localhost:8111/ localhost:8112/

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "tornado" {
  bind    = "127.0.0.1:8110"
  app     = "tornado_hello:make_app()"
  class   = "tornado"
  python  = "/usr/bin/python3"
  dir     = "apps"
  workers = 2
}

listener "aiohttp" {
  bind    = "127.0.0.1:8111"
  app     = "aiohttp_hello:app"
  class   = "aiohttp"              # gunicorn -k aiohttp.GunicornWebWorker
  python  = "/usr/bin/python3"
  dir     = "apps"
  workers = 2
}

listener "asgi" {
  bind    = "127.0.0.1:8112"
  app     = "starlette_hello:app"  # or "fastapi_hello:app"
  class   = "asgi"                 # gunicorn -k uvicorn.workers.UvicornWorker
  python  = "/usr/bin/python3"
  dir     = "apps"
  workers = 2
  timeout = "10s"
}
