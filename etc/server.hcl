# A production-style config for the unit in etc/hfork.service, which
# makes /run/hfork (RuntimeDirectory=) and /var/log/hfork (LogsDirectory=).
pidfile = "/run/hfork/hfork.pid"

log {
  level  = "info"
  format = "json"
  file   = "/var/log/hfork/hfork.log" # rotated by etc/logrotate.d/hfork
}

listener "web" {
  bind             = [":8080"]
  class            = "async"
  timeout          = "30s"
  graceful_timeout = "30s"
  max_requests        = 100000
  max_requests_jitter = 10000

  access_log {
    file = "/var/log/hfork/web.access.log"
  }

  route "/" {
    respond { body = "ok\n" }
  }
}
