# hfork example: a Go net/http program (examples/apps/goapp) as an exec pool.
#
# Build it once, then point HFORK_GOAPP at the binary:
#
#   go build -o goapp ./examples/apps/goapp
#   HFORK_GOAPP=$PWD/goapp go run ./cmd/hfork -f examples/exec-go.hcl
#   curl localhost:8096/
#
# (or "go install ./examples/apps/goapp" and leave HFORK_GOAPP unset: then
# "goapp" is looked up in PATH). Not "go run ./apps/goapp": the go command
# would run the program as its child, so the program's pid would not be
# LISTEN_PID and hfork's stop signal would reach the go command instead.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "go" {
  bind    = "127.0.0.1:8096"
  class   = "exec"
  workers = 2
  command = [env("HFORK_GOAPP") != "" ? env("HFORK_GOAPP") : "goapp"]
  env     = { GREETING = "hello" }
  timeout = "10s"
}
