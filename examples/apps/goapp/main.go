// Command goapp is an hfork exec worker in Go's standard library: it serves
// net/http on the sockets hfork passes in (systemd socket activation), says
// READY=1 on NOTIFY_SOCKET once it serves, sends WATCHDOG=1 while its serve
// loop is healthy, and drains with http.Server.Shutdown on SIGTERM.
//
//	listener "go" {
//	  class   = "exec"
//	  command = ["goapp"]
//	}
//
// Build it first (go build ./examples/apps/goapp); do not run it with
// "go run": that runs the program as a child of the go command, so its pid is
// not LISTEN_PID and hfork's signals reach the go command instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const (
	listenFdsStart = 3               // fds 0-2 are stdio
	keepAlive      = 5 * time.Second // an idle keep-alive connection is closed after this
)

func main() {
	log.SetFlags(0) // hfork stamps each line with time, listener and pid
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	lns, err := listeners()
	if err != nil {
		return err
	}
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "hello"
	}
	hello := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s from go\n", greeting)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", hello)
	// A slow request (10s at most), to watch a drain wait for it.
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		s, _ := strconv.ParseFloat(r.URL.Query().Get("s"), 64)
		select {
		case <-time.After(time.Duration(min(max(s, 0), 10) * float64(time.Second))):
		case <-r.Context().Done():
			return
		}
		hello(w, r)
	})
	srv := &http.Server{Handler: mux, IdleTimeout: keepAlive, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
	notify("READY=1\nSTATUS=serving")

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	var ping <-chan time.Time
	if d := watchdogInterval(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		ping = t.C
		notify("WATCHDOG=1")
	}
	for {
		select {
		case <-ping:
			notify("WATCHDOG=1")
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-stop:
			notify("STOPPING=1")
			// Shutdown closes the listeners (our copies: sibling workers keep
			// the socket), closes idle connections, waits for in-flight
			// requests, and answers none with keep-alive any more.
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout())
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
}

// listeners returns the sockets passed as fds 3.. with LISTEN_FDS, after
// checking that LISTEN_PID names this process.
func listeners() ([]net.Listener, error) {
	if pid := os.Getenv("LISTEN_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return nil, fmt.Errorf("LISTEN_PID=%s is not this process (%d)", pid, os.Getpid())
	}
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if n < 1 {
		return nil, errors.New("no LISTEN_FDS: run me as an hfork exec worker (or under systemd socket activation)")
	}
	lns := make([]net.Listener, 0, n)
	for fd := listenFdsStart; fd < listenFdsStart+n; fd++ {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		// FileListener dups the fd into Go's poller (non-blocking, so a
		// sibling winning the race for a connection is just EAGAIN).
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("fd %d: %w", fd, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// notify sends one sd_notify datagram to NOTIFY_SOCKET, if set. A leading
// '@' names Linux's abstract namespace; the net package maps it to the NUL
// byte the kernel expects.
func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Printf("notify: %v", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		log.Printf("notify: %v", err)
	}
}

// watchdogInterval is half of WATCHDOG_USEC, or 0 without a watchdog.
func watchdogInterval() time.Duration {
	usec, _ := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// drainTimeout bounds Shutdown; keep it under the listener's
// graceful_timeout (30s unless set), after which hfork sends SIGKILL.
func drainTimeout() time.Duration {
	if s, err := strconv.ParseFloat(os.Getenv("DRAIN_SECONDS"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	return 25 * time.Second
}
