package wire

import (
	"errors"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestSwapNoticeRoundTrip(t *testing.T) {
	for _, c := range []struct {
		id      uint64
		err     error
		refused string
	}{
		{7, nil, ""},
		{8, errors.New("open access log: too many open files\nsecond line"), "open access log: too many open files second line"},
		{9, errors.New("a, b"), "a, b"},
	} {
		n := ParseNotice([]byte("WATCHDOG=1\n" + SwapNotice(c.id, c.err)))
		r, ok := n.Swap()
		if !ok || r.ID != c.id || r.Refused != c.refused {
			t.Errorf("SwapNotice(%d, %v) reads back as %+v, %v", c.id, c.err, r, ok)
		}
	}
	for _, bad := range []string{"", "X_HFORK_SWAP=", "X_HFORK_SWAP=x", "X_HFORK_SWAP=-1"} {
		if r, ok := ParseNotice([]byte(bad)).Swap(); ok {
			t.Errorf("%q reads as a swap answer %+v", bad, r)
		}
	}
	if r, _ := ParseNotice([]byte("X_HFORK_SWAP=3,")).Swap(); r.Refused == "" {
		t.Error("a refusal without a reason reads as a switch")
	}
}

// SwapMask hides what a swap applies and nothing else.
func TestSwapMask(t *testing.T) {
	base := hclconfig.Listener{Name: "web", Class: "async", Workers: 2, Bind: []string{"127.0.0.1:1"}}
	swapped := base
	swapped.Workers = 5
	swapped.Routes = []hclconfig.Route{{Prefix: "/"}}
	swapped.Hosts = []hclconfig.Host{{Label: "x"}}
	swapped.Headers.Remove = []string{"Server"}
	swapped.ErrorPages = map[int]string{404: "/x"}
	swapped.Compress.Level = 3
	swapped.AccessLog.File = "/a.log"
	swapped.MaxBodyBytes, swapped.RedirectHTTPS, swapped.HTTPSPort = 10, true, 443
	if SwapMask(base).Fingerprint() != SwapMask(swapped).Fingerprint() {
		t.Error("a change of swappable fields changes the masked fingerprint")
	}
	other := base
	other.ReadTimeout = 1
	if SwapMask(base).Fingerprint() == SwapMask(other).Fingerprint() {
		t.Error("read_timeout is masked")
	}
}
