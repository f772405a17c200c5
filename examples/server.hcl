# hfork example: two listeners of different classes.
#
#   go run ./cmd/hfork -f examples/server.hcl
#   curl localhost:8080/            respond
#   curl localhost:8080/static/     static files from examples/www
#   curl localhost:8080/api/hello   proxied to the "api" listener
#   open http://localhost:8080/status/ in a browser: the status page
#   curl localhost:9145/metrics     Prometheus metrics, served by the master
#
# Relative paths are resolved against this file's directory.

pidfile = "hfork.pid"

log {
  level  = "info"
  format = "auto"
}

reload {
  watch    = true
  debounce = "250ms"
}

metrics {
  bind = "127.0.0.1:9145"
}

listener "web" {
  bind    = "127.0.0.1:8080"
  class   = "async"
  workers = 2

  route "/static/" {
    static { root = "www" }
  }
  route "/api/" {
    proxy { upstream = ["http://127.0.0.1:8081"] }
  }
  route "/status/" {
    status {}
  }
  route "/old/" {
    redirect {
      to     = "/static/"
      status = 301
    }
  }
  route "/" {
    respond {
      status  = 200
      body    = "hello from hfork\n"
      headers = { "Content-Type" = "text/plain; charset=utf-8" }
    }
  }
}

listener "api" {
  bind    = "127.0.0.1:8081"
  class   = "thread"
  workers = 2
  threads = 8

  route "/" {
    respond {
      body    = "{\"greeting\": \"${upper(env("GREETING") == "" ? "hello" : env("GREETING"))}\"}\n"
      headers = { "Content-Type" = "application/json" }
    }
  }
}
