# hfork example: a Node.js http server (core modules only) as an exec pool.
#
#   go run ./cmd/hfork -f examples/exec-node.hcl
#   curl localhost:8095/
#
# ready = "started": Node's core cannot send a unix datagram, so the app
# cannot say READY=1, and hfork counts each worker ready once it runs (see
# apps/node/server.js). Requests that arrive while it boots wait in the
# socket's backlog; none is refused.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "node" {
  bind    = "127.0.0.1:8095"
  class   = "exec"
  workers = 2
  command = ["node", "apps/node/server.js"]
  env     = { GREETING = "hello" }
  ready   = "started"
}
