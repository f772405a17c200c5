package worker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// floodSite is a one-worker listener of class with room for 40
// connections, whose header and idle timeouts are far longer than a
// probe waits, so only eviction can make room.
func floodSite(t *testing.T, class string, loop bool) (hclconfig.Listener, string) {
	l := loopSite(t)
	l.Class, l.EventLoop = class, loop
	l.WorkerConnections = 40
	l.ReadHeaderTimeout = time.Minute
	l.Keepalive = time.Minute
	tw := startSite(t, l, nil, nil)
	return l, tw.addr
}

// flood opens n connections from 127.0.0.1 to addr without waiting for
// them to be accepted; each sends head (nothing for a silent flood, part
// of a head for slowloris). They close with the test.
func flood(t *testing.T, addr string, n int, head string) {
	t.Helper()
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("flood connection: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		if head != "" {
			io.WriteString(c, head)
		}
	}
}

// probe asks addr for "/" from 127.0.0.2 (another client) on a new
// connection and reports the status or what went wrong. It waits 5s at
// most: far less than the flood's timeouts.
func probe(addr string) string {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	return resp.Status
}

// TestFloodsDoNotLockOut: 200 connections held open from one address by
// a client that sends nothing, or trickles a head (slowloris), take all
// of a worker's 40 slots and queue 160 more behind them; probes from
// another address are each served while the flood holds, on the event
// loop and on net/http, sync included. Before the reusable queue, the 160 waiting floods
// got a slot each only at one eviction per 50ms tick (silent), or never
// (slowloris, whose heads are not idle).
func TestFloodsDoNotLockOut(t *testing.T) {
	if raiseNoFile(t) < 400 {
		t.Skip("fd limit too low for the flood")
	}
	for _, tc := range []struct {
		name, class string
		loop        bool
	}{
		{"loop", hclconfig.ClassAsync, true},
		{"async", hclconfig.ClassAsync, false},
		{"thread", hclconfig.ClassThread, false},
		{"sync", hclconfig.ClassSync, false},
	} {
		for _, fl := range []struct{ name, head string }{
			{"silent", ""},
			{"slowloris", "GET / HTTP/1.1\r\nHost: x\r\nX-a: b\r\n"},
		} {
			t.Run(tc.name+"/"+fl.name, func(t *testing.T) {
				_, addr := floodSite(t, tc.class, tc.loop)
				flood(t, addr, 200, fl.head)
				for i := range 5 {
					if got := probe(addr); got != "200 OK" {
						t.Fatalf("probe %d under the flood: %s", i, got)
					}
				}
			})
		}
	}
}

// TestMaxConnectionsPerIP: past max_connections_per_ip the worker closes
// a client's new connections unread, on the loop and on net/http, and
// another address is served; once one closes, the client gets room again.
func TestMaxConnectionsPerIP(t *testing.T) {
	for _, loop := range []bool{true, false} {
		t.Run(fmt.Sprintf("event_loop=%v", loop), func(t *testing.T) {
			l := loopSite(t)
			l.EventLoop = loop
			l.MaxConnsPerIP = 3
			l.ReadHeaderTimeout = time.Minute
			tw := startSite(t, l, nil, nil)
			var held []net.Conn
			for i := range 3 {
				c, br := dialSite(t, tw.addr)
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				if _, body := readAnswer(t, br, "GET"); body != "hello\n" {
					t.Fatalf("connection %d: %q", i, body)
				}
				held = append(held, c)
			}
			c, br := dialSite(t, tw.addr)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, err := br.ReadByte(); err == nil || !(err == io.EOF || isReset(err)) {
				t.Fatalf("a fourth connection from one address: read %v, want it closed", err)
			}
			if got := probe(tw.addr); got != "200 OK" {
				t.Fatalf("another address: %s", got)
			}
			held[0].Close()
			waitUntil(t, "room for the address again", func() bool {
				c, br := dialSite(t, tw.addr)
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				line, _ := br.ReadString('\n')
				return strings.HasPrefix(line, "HTTP/1.1 200")
			})
		})
	}
}

func TestPerIPCounts(t *testing.T) {
	p := perIP{max: 2}
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	if !p.admit(a) || !p.admit(a) || p.admit(a) {
		t.Fatal("the third connection of an address was admitted with max 2")
	}
	if !p.admit(b) {
		t.Fatal("another address was refused")
	}
	p.leave(a)
	if !p.admit(a) {
		t.Fatal("no room after a leave")
	}
	p.leave(a)
	p.leave(a)
	p.leave(b)
	if len(p.n) != 0 {
		t.Fatalf("counts left after every leave: %v", p.n)
	}
	off := perIP{}
	for range 10 {
		if !off.admit(a) {
			t.Fatal("no cap refused a connection")
		}
	}
}

// TestReuseQueue: connections leave the queue head first, oldest first,
// none younger than evictMinQuiet; a connection forgotten while a state
// change races its close is not queued again, and the evictions still
// closing are counted until they are forgotten.
func TestReuseQueue(t *testing.T) {
	var q reuseQueue
	t0 := time.Now()
	cs := make([]*trackedConn, 4)
	for i := range cs {
		cs[i] = &trackedConn{}
		q.push(cs[i], t0.Add(time.Duration(i)*time.Second))
	}
	q.push(cs[0], t0.Add(time.Hour)) // already queued: keeps its place
	q.remove(cs[1])
	got := q.oldest(t0.Add(2*time.Second+evictMinQuiet), 10)
	if len(got) != 2 || got[0] != cs[0] || got[1] != cs[2] {
		t.Fatalf("oldest = %v, want the first and the third", got)
	}
	if got := q.oldest(t0.Add(time.Hour), 1); len(got) != 1 || got[0] != cs[0] {
		t.Fatalf("oldest(1) = %v, want the first", got)
	}
	cs[2].evicted.Store(true)
	q.pending.Add(1)
	q.forget(cs[2])
	q.push(cs[2], t0.Add(time.Hour))
	if got := q.oldest(t0.Add(time.Hour), 10); len(got) != 2 || got[0] != cs[0] || got[1] != cs[3] {
		t.Fatalf("after forget: oldest = %v, want the first and the fourth", got)
	}
	if p := q.pending.Load(); p != 0 {
		t.Fatalf("pending = %d after the evicted connection was forgotten, want 0", p)
	}
}
