# hfork example: any program as a pool's workers (class "exec").
# apps/hello.py is a Python standard-library HTTP server that takes its
# socket from hfork (fd 3, LISTEN_FDS) and says READY=1 when it serves.
#
#   go run ./cmd/hfork -f examples/exec-python.hcl
#   curl localhost:8090/
#
# Relative paths (pidfile, dir, the script) are resolved against this
# file's directory, which is also the program's working directory.

pidfile = "hfork.pid"

log {
  format = "text"
}

listener "python" {
  bind    = "127.0.0.1:8090"
  class   = "exec"
  workers = 2

  # -B: no __pycache__ next to the apps.
  command = ["python3", "-B", "apps/hello.py"]
  env     = { GREETING = "hello" }

  ready       = "notify" # ready once it sends READY=1 (the default)
  stop_signal = "TERM"   # asks it to drain; SIGKILL after graceful_timeout
  timeout     = "10s"    # WATCHDOG_USEC: it must send WATCHDOG=1 at least this often
  graceful_timeout = "30s"
}
