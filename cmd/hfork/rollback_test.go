package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// answerLoad is keep-alive clients that tell a transport failure (a lost
// request) from an answer, and count the answers by body.
type answerLoad struct {
	addr   string
	stop   chan struct{}
	wg     sync.WaitGroup
	lost   atomic.Int64
	mu     sync.Mutex
	bodies map[string]int
	errs   []string
	// Once marked, settled[i] says client i got want, and wrong counts
	// the other answers a client got after it was settled.
	marked  atomic.Bool
	want    string
	settled []atomic.Bool
	wrong   atomic.Int64
}

func startAnswerLoad(t *testing.T, addr string, clients int, want string) *answerLoad {
	l := &answerLoad{addr: addr, stop: make(chan struct{}), bodies: map[string]int{}, want: want,
		settled: make([]atomic.Bool, clients)}
	for i := range clients {
		l.wg.Add(1)
		go l.client(i)
	}
	t.Cleanup(l.finish)
	return l
}

func (l *answerLoad) client(i int) {
	defer l.wg.Done()
	var conn net.Conn
	var br *bufio.Reader
	for {
		select {
		case <-l.stop:
			if conn != nil {
				conn.Close()
			}
			return
		default:
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
			if err != nil {
				l.fail("dial: " + err.Error())
				continue
			}
			conn, br = c, bufio.NewReader(c)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
			l.fail(err.Error())
			conn.Close()
			conn = nil
			continue
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			l.fail(err.Error())
			conn.Close()
			conn = nil
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			l.fail(err.Error())
		}
		got := fmt.Sprintf("%d %s", resp.StatusCode, body)
		l.mu.Lock()
		l.bodies[got]++
		l.mu.Unlock()
		if l.marked.Load() {
			if got == l.want {
				l.settled[i].Store(true)
			} else if l.settled[i].Load() {
				l.wrong.Add(1)
			}
		}
		if resp.Close {
			conn.Close()
			conn = nil
		}
	}
}

func (l *answerLoad) fail(why string) {
	l.lost.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, why)
	}
	l.mu.Unlock()
}

// waitSettled waits until every client got want since mark.
func (l *answerLoad) waitSettled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := range l.settled {
		for !l.settled[i].Load() {
			if time.Now().After(deadline) {
				t.Fatalf("client %d never answered %q", i, l.want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (l *answerLoad) seen(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies[body]
}

func (l *answerLoad) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func sourceHash(src string) string {
	sum := sha256.Sum256([]byte(src))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// TestRollback: with nothing replaced yet -s rollback fails; after a
// reload to a valid config whose route answers 500, -s rollback brings the
// old answers back under keep-alive load, losing no request, and
// -s status names the live config (the first, by hash, rolled back to)
// and the previous one (the bad one).
func TestRollback(t *testing.T) {
	skipShort(t)
	port := mustFreePort(t)
	good := webConfig(port, "ok", `keepalive = "2s"`)
	bad := strings.Replace(webConfig(port, "bad", `keepalive = "2s"`), `respond { body = "bad" }`,
		"respond {\n      status = 500\n      body   = \"bad\"\n    }", 1)
	m := startMaster(t, "", good)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitBody(t, url, "ok")

	code, out, errOut := hforkCmd("-s", "rollback", "-f", m.cfgPath)
	if code != 1 || !strings.Contains(errOut, "no previous config") {
		t.Fatalf("rollback with no previous config: exit %d\n%s%s", code, out, errOut)
	}

	l := startAnswerLoad(t, fmt.Sprintf("127.0.0.1:%d", port), 4, "200 ok")
	m.writeConfig(bad)
	if code, out, errOut := hforkCmd("-s", "reload", "-f", m.cfgPath); code != 0 {
		t.Fatalf("reload to the bad config: exit %d\n%s%s", code, out, errOut)
	}
	for deadline := time.Now().Add(10 * time.Second); l.seen("500 bad") < 100; {
		if time.Now().After(deadline) {
			t.Fatalf("the bad config never answered: %v", l.bodies)
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, out, errOut = hforkCmd("-s", "rollback", "--wait", "-f", m.cfgPath)
	if code != 0 || !strings.HasPrefix(out, "rollback complete:\n  replace  listener \"web\"") {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
	}
	// Once each client met the old config again, it never meets the bad
	// one: the drained generation answers nobody.
	l.marked.Store(true)
	l.waitSettled(t)
	for n := l.seen("200 ok") + 2000; l.seen("200 ok") < n; {
		time.Sleep(5 * time.Millisecond)
	}
	l.finish()
	t.Logf("answers %v; lost %d %v", l.bodies, l.lost.Load(), l.errs)
	if n := l.lost.Load(); n != 0 {
		t.Errorf("%d requests lost through the reload and the rollback: %v", n, l.errs)
	}
	if n := l.wrong.Load(); n != 0 {
		t.Errorf("%d answers from the bad config after a client had the old one back", n)
	}
	st := statusJSON(t, m)
	c := st.Config
	if c == nil || c.Hash != sourceHash(good) || !c.Rollback || c.File != m.cfgPath ||
		c.Previous == nil || c.Previous.Hash != sourceHash(bad) {
		t.Errorf("status config %+v: want %s rolled back to, previous %s, file %s", c, sourceHash(good), sourceHash(bad), m.cfgPath)
	}
	live := regexp.MustCompile(`"msg":"config live"[^\n]*"hash":"` + sourceHash(good) + `"[^\n]*"rollback":true`)
	if !live.MatchString(m.log.String()) {
		t.Errorf("the log never said the rollback made %s live", sourceHash(good))
	}
	code, out, _ = hforkCmd("-s", "status", "-f", m.cfgPath)
	if code != 0 || !strings.Contains(out, sourceHash(good)+", rolled back to") {
		t.Errorf("status text:\n%s", out)
	}
}
