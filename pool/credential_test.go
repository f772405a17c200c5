package pool

import (
	"errors"
	"os"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestCredential(t *testing.T) {
	if c, err := credential(hclconfig.Listener{}); c != nil || err != nil {
		t.Errorf("no user: %+v, %v; want hfork's own identity", c, err)
	}
	if _, err := credential(hclconfig.Listener{User: "hfork-no-such-user"}); err == nil {
		t.Error("an unknown user resolved")
	}
	if _, err := credential(hclconfig.Listener{Group: "hfork-no-such-group"}); err == nil {
		t.Error("an unknown group resolved")
	}
	if os.Geteuid() != 0 {
		_, err := credential(hclconfig.Listener{User: "root"})
		if !errors.Is(err, ErrNeedRoot) {
			t.Errorf("switching to root unprivileged: %v, want ErrNeedRoot", err)
		}
		return
	}
	for _, tc := range []struct {
		l        hclconfig.Listener
		uid, gid uint32
	}{
		{hclconfig.Listener{User: "nobody"}, 65534, 65534}, // the user's primary group
		{hclconfig.Listener{User: "65534", Group: "0"}, 65534, 0},
		{hclconfig.Listener{Group: "65534"}, 0, 65534}, // hfork's uid
	} {
		c, err := credential(tc.l)
		if err != nil {
			t.Fatalf("%+v: %v", tc.l, err)
		}
		if c.Uid != tc.uid || c.Gid != tc.gid || c.Groups == nil || len(c.Groups) != 0 || c.NoSetGroups {
			t.Errorf("user %q group %q: %+v; want %d:%d with supplementary groups cleared", tc.l.User, tc.l.Group, c, tc.uid, tc.gid)
		}
	}
	if err := CheckUser(hclconfig.Listener{Name: "web", User: "nobody"}); err != nil {
		t.Error(err)
	}
}
