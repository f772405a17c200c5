# Config for the container image: logs as JSON to stderr, no pidfile.
log { format = "json" }

reload {
  watch = true
}

listener "web" {
  bind             = ":8080"
  class            = "async"
  graceful_timeout = "25s"
  route "/" {
    respond { body = "hello from hfork in a container\n" }
  }
}
