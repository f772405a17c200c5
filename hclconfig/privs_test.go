package hclconfig

import (
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]uint32{"0660": 0o660, "660": 0o660, "0o600": 0o600, "0777": 0o777, "0": 0} {
		if got, err := parseMode(in); err != nil || got != want {
			t.Errorf("parseMode(%q) = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0999", "1777", "rw-rw----", "07777", "-1"} {
		if got, err := parseMode(in); err == nil {
			t.Errorf("parseMode(%q) = %o, want an error", in, got)
		}
	}
}

// TestLookupIdentity uses the real user database: root exists on every
// machine the tests run on, by name and by id.
func TestLookupIdentity(t *testing.T) {
	for _, name := range []string{"root", "0"} {
		if err := lookupUserOrID(name); err != nil {
			t.Errorf("user %q: %v", name, err)
		}
		if err := lookupGroupOrID(name); err != nil {
			t.Errorf("group %q: %v", name, err)
		}
	}
	if err := lookupUserOrID("hfork-no-such-user"); err == nil {
		t.Error("an unknown user was found")
	}
	if err := lookupGroupOrID("4000000000"); err == nil {
		t.Error("an unknown group id was found")
	}
}

// TestListenerIdentity: a listener inherits the top-level user and group
// one by one, and may set either back to the master's own.
func TestListenerIdentity(t *testing.T) {
	fakeUsers(t)
	c := parseOK(t, "server.hcl", `
user  = "nobody"
group = "nogroup"
listener "a" {
  bind = ":8080"
  route "/" {
    respond {}
  }
}
listener "b" {
  bind = ":8081"
  user = "www-data"
  route "/" {
    respond {}
  }
}
listener "c" {
  bind  = ":8082"
  user  = ""
  group = ""
  route "/" {
    respond {}
  }
}
`)
	var got []string
	for _, l := range c.Listeners {
		got = append(got, l.Name+"="+l.User+":"+l.Group)
	}
	if s := strings.Join(got, " "); s != "a=nobody:nogroup b=www-data:nogroup c=:" {
		t.Errorf("identities %s", s)
	}
	roundTrip(t, "server.hcl", c)

	a, b := c.Listeners[0], c.Listeners[0]
	b.User = "www-data"
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("changing the user kept the fingerprint: its workers must be replaced")
	}
}
