package app

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// A burst wider than the 256 idle connections a transport used to keep
// per upstream must leave them all idle for the next one: closing the
// extra ones made every burst dial again (at 5000 clients, a TIME_WAIT
// churn that cut proxy@5000 by a fifth in the bench, with 60 errors).
func TestProxyBurstKeepsItsUpstreamConnections(t *testing.T) {
	const burst = 300
	var dials atomic.Int64
	var arrived sync.WaitGroup
	release := make(chan struct{})
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release // every request of the burst at once at the upstream
		io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	front := httptest.NewServer(mustNew(t, proxyRoute("/", up.URL)))
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: burst, MaxConnsPerHost: burst}}
	defer client.CloseIdleConnections()

	round := func() {
		arrived.Add(burst)
		release = make(chan struct{})
		var done sync.WaitGroup
		errs := make(chan error, burst)
		for range burst {
			done.Add(1)
			go func() {
				defer done.Done()
				resp, err := client.Get(front.URL + "/x")
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					errs <- &statusErr{resp.StatusCode, string(b)}
				}
			}()
		}
		arrived.Wait()
		close(release)
		done.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	round()
	if n := dials.Load(); n != burst {
		t.Fatalf("first burst: the upstream saw %d connections, want %d", n, burst)
	}
	round()
	if n := dials.Load() - burst; n != 0 {
		t.Errorf("second burst dialed %d new upstream connections, want 0 (all %d kept idle)", n, burst)
	}
}

type statusErr struct {
	code int
	body string
}

func (e *statusErr) Error() string { return http.StatusText(e.code) + ": " + e.body }
