# A production-style config for the unit in etc/hfork.service.
pidfile = "/run/hfork/hfork.pid"

log {
  level  = "info"
  format = "json"
}

listener "web" {
  bind             = [":8080"]
  class            = "async"
  timeout          = "30s"
  graceful_timeout = "30s"
  max_requests        = 100000
  max_requests_jitter = 10000

  route "/" {
    respond { body = "ok\n" }
  }
}
