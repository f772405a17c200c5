// Command hostile is the hostile client of issue 18's measurements, for
// hfork and nginx alike, on loopback: connection floods with probes from
// another address, slow readers, and a framing table. hostile.sh runs it
// against both servers in one run.
//
//	hostile flood -addr 127.0.0.1:8080 -n 3000 -mode silent -for 30s
//	hostile slowread -addr 127.0.0.1:8080 -path /static/big.bin -n 20 -at 75s
//	hostile framing -addr 127.0.0.1:8080
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hostile flood|slowread|framing [flags]")
		os.Exit(2)
	}
	raiseNoFile()
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "server address")
	switch os.Args[1] {
	case "flood":
		n := fs.Int("n", 3000, "flood connections held open")
		mode := fs.String("mode", "silent", "silent | slowloris")
		dur := fs.Duration("for", 30*time.Second, "how long to flood")
		reopen := fs.Duration("reopen", 10*time.Second, "re-open the flood this often")
		fs.Parse(os.Args[2:])
		r := flood(*addr, *n, *mode, *dur, *reopen)
		fmt.Printf("flood %s n=%d: %d of %d probes answered within 1s (%.0f%%)%s\n", *mode, *n, r.ok, r.total, 100*float64(r.ok)/float64(max(r.total, 1)), r.misses())
	case "slowread":
		path := fs.String("path", "/static/big.bin", "a large file")
		n := fs.Int("n", 20, "slow readers")
		at := fs.Duration("at", 75*time.Second, "when to count the readers still held")
		fs.Parse(os.Args[2:])
		held := slowread(*addr, *path, *n, *at)
		fmt.Printf("slowread n=%d: %d still held at %v\n", *n, held, *at)
	case "framing":
		fs.Parse(os.Args[2:])
		for _, r := range rows {
			fmt.Printf("%-28s %s\n", r.name, exchange(*addr, r.in))
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: hostile flood|slowread|framing [flags]")
		os.Exit(2)
	}
}

func raiseNoFile() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// floodResult counts a flood's probes: those answered within a second,
// all of them, and the misses by what they waited on.
type floodResult struct {
	ok, total int
	miss      map[string]int
}

// misses lists the missed probes by reason, as "; dial 3, head 2".
func (r floodResult) misses() string {
	if len(r.miss) == 0 {
		return ""
	}
	var parts []string
	for _, k := range []string{"dial", "head", "status", "closed"} {
		if r.miss[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.miss[k]))
		}
	}
	return "; missed: " + strings.Join(parts, ", ")
}

// flood holds n connections from 127.0.0.1, re-opened every reopen, and
// probes from 127.0.0.2 every 200ms.
func flood(addr string, n int, mode string, dur, reopen time.Duration) floodResult {
	head := ""
	if mode == "slowloris" {
		head = "GET / HTTP/1.1\r\nHost: x\r\nX-a: b\r\n"
	}
	var mu sync.Mutex
	var conns []net.Conn
	open := func() {
		mu.Lock()
		old := conns
		conns = nil
		mu.Unlock()
		for _, c := range old {
			c.Close()
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 256)
		for range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					return
				}
				if head != "" {
					io.WriteString(c, head)
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	stop := make(chan struct{})
	var fdone sync.WaitGroup
	fdone.Go(func() {
		for {
			open()
			select {
			case <-stop:
				return
			case <-time.After(reopen):
			}
		}
	})
	res := floodResult{miss: map[string]int{}}
	var rmu sync.Mutex
	var pw sync.WaitGroup
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		pw.Go(func() {
			why := probe(addr)
			rmu.Lock()
			res.total++
			if why == "" {
				res.ok++
			} else {
				res.miss[why]++
			}
			rmu.Unlock()
		})
		time.Sleep(200 * time.Millisecond)
	}
	pw.Wait()
	close(stop)
	fdone.Wait()
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	return res
}

// probe asks for "/" from 127.0.0.2 and reports "" for a 200 within 1s,
// or what it missed on: "dial" (the handshake did not complete: the
// listen queue was full), "head" (connected, no answer in time: queued
// for an accept, or held by the server), "closed" (the server closed or
// reset it), "status" (an answer other than 200).
func probe(addr string) string {
	start := time.Now()
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "dial"
	}
	defer c.Close()
	c.SetDeadline(start.Add(time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return "head"
		}
		return "closed"
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "status"
	}
	return ""
}

// slowread starts n clients that read path one byte a second through a
// small receive window, and counts at at the server's sockets to them
// still established. A client cannot tell itself: a server that closes
// with its answer still queued sends its FIN behind the queue.
func slowread(addr, path string, n int, at time.Duration) int {
	_, sport, _ := net.SplitHostPort(addr)
	ports := map[string]bool{}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
				return nil
			}}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			_, cport, _ := net.SplitHostPort(c.LocalAddr().String())
			mu.Lock()
			ports[cport] = true
			mu.Unlock()
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			var b [1]byte
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				c.Read(b[:])
			}
		})
	}
	time.Sleep(at)
	mu.Lock()
	held := established(sport, ports)
	mu.Unlock()
	close(stop)
	wg.Wait()
	return held
}

// established counts the sockets in /proc/net/tcp on local port sport
// that are ESTABLISHED to one of the remote ports.
func established(sport string, remotes map[string]bool) int {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" {
			continue
		}
		if hexPort(f[1]) == sport && remotes[hexPort(f[2])] {
			n++
		}
	}
	return n
}

// hexPort is the decimal port of /proc/net/tcp's "ADDR:PORT" in hex.
func hexPort(s string) string {
	_, p, ok := strings.Cut(s, ":")
	if !ok {
		return ""
	}
	v, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

type row struct{ name, in string }

const closer = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

// rows are the framing table's cases that tell servers apart (the full
// table is pool/worker's TestFramingTable).
var rows = []row{
	{"CL then TE (smuggling)", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n" + closer},
	{"TE then CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + closer},
	{"TE gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + closer},
	{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + closer},
	{"two TE chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + closer},
	{"two CL that agree", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + closer},
	{"two CL that differ", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + closer},
	{"folded TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + closer},
	{"folded CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\t5\r\n\r\nhello" + closer},
	{"space before colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello" + closer},
	{"HTTP/0.9", "GET /\r\n"},
	{"chunked (well framed)", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + closer},
	{"9 KiB header (nginx: 8k)", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9<<10) + "\r\n\r\n" + closer},
}

// exchange sends in and lists the status codes until the server closes
// (or 3s pass), "rst" for a reset.
func exchange(addr, in string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(3 * time.Second))
	io.WriteString(c, in)
	br := bufio.NewReader(c)
	var out []string
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			switch {
			case strings.Contains(err.Error(), "reset"):
				out = append(out, "rst")
			case strings.Contains(err.Error(), "timeout"):
				out = append(out, "silent")
			}
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, fmt.Sprint(resp.StatusCode))
	}
	return strings.Join(out, " ") + fmt.Sprintf("  (%.1fs)", time.Since(start).Seconds())
}
