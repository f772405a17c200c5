# hfork example: nginx in front of an app server, in one file.
# "web" is the public listener: it serves examples/www under /static/
# itself and proxies everything else over a unix socket to "app", a pool
# of Python workers (apps/hello.py, the standard library only). Either
# listener reloads without losing a request: HUP replaces the app's
# workers behind the same socket, and the proxy sends a request that
# found a pooled connection closed again on a new one.
#
#   go run ./cmd/hfork -f examples/proxy-unix.hcl
#   curl localhost:8080/            # "hello from python", through the socket
#   curl localhost:8080/static/     # examples/www/index.html, from hfork
#
# Relative paths (the socket, the static root, the script) are resolved
# against this file's directory.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "web" {
  bind  = "127.0.0.1:8080"
  class = "async"

  route "/static/" {
    static { root = "www" }
  }

  route "/" {
    proxy {
      upstream = "unix:app.sock"
      retries  = 1
      read_timeout = "30s"
      # On by default, as nginx's proxy_request_buffering: a slow upload is
      # read whole by hfork before a Python worker is asked to serve it.
      request_buffering = true
    }
  }
}

listener "app" {
  bind        = "unix:app.sock"
  socket_mode = "0600" # only hfork's own user may connect
  class       = "exec"
  workers     = 2
  command     = ["python3", "-B", "apps/hello.py"]
  graceful_timeout = "30s"
}
