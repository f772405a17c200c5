package hclconfig

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Lookups of users and groups, variables so tests do not depend on the
// machine's /etc/passwd.
var (
	lookupUser  = lookupUserOrID
	lookupGroup = lookupGroupOrID
)

// lookupUserOrID finds a user by name, or by id when name is a number.
func lookupUserOrID(name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	} else if _, nerr := strconv.Atoi(name); nerr != nil {
		return err
	}
	_, err := user.LookupId(name)
	return err
}

func lookupGroupOrID(name string) error {
	if _, err := user.LookupGroup(name); err == nil {
		return nil
	} else if _, nerr := strconv.Atoi(name); nerr != nil {
		return err
	}
	_, err := user.LookupGroupId(name)
	return err
}

// identity decodes a user or group attribute and checks that it exists
// here. Whether hfork may switch to it is known only when it runs (hfork
// -t often runs unprivileged in CI), so that is checked at start.
func (d *decoder) identity(attrs hcl.Attributes, name, kind string, dst *string) bool {
	var s string
	if !d.str(attrs, name, &s) {
		return false
	}
	*dst = s
	if s == "" {
		return true
	}
	look := lookupUser
	if kind == "group" {
		look = lookupGroup
	}
	if err := look(s); err != nil {
		var uu user.UnknownUserError
		var ug user.UnknownGroupError
		var uid user.UnknownUserIdError
		var gid user.UnknownGroupIdError
		rng := attrs[name].Expr.Range()
		if errors.As(err, &uu) || errors.As(err, &ug) || errors.As(err, &uid) || errors.As(err, &gid) {
			d.errorf(rng, "Unknown "+kind, "There is no %s %q on this machine.", kind, s)
		} else {
			d.errorf(rng, "Cannot look up "+kind, "Looking up %s %q failed: %v.", kind, s, err)
		}
		return false
	}
	return true
}

// socketMode decodes socket_mode: an octal string, because the number
// 0660 in HCL is six hundred and sixty.
func (d *decoder) socketMode(attrs hcl.Attributes, dst *string) bool {
	attr, ok := attrs["socket_mode"]
	if !ok {
		return false
	}
	v, ok := d.eval(attr, cty.DynamicPseudoType, "")
	if !ok {
		return false
	}
	rng := attr.Expr.Range()
	if v.Type() != cty.String {
		d.errorf(rng, "Invalid socket_mode", "Write the mode as an octal string, like \"0660\": a number would be read in decimal.")
		return false
	}
	mode, err := parseMode(v.AsString())
	if err != nil {
		d.errorf(rng, "Invalid socket_mode", "%q is not a file mode: write an octal string from \"0000\" to \"0777\", like \"0660\".", v.AsString())
		return false
	}
	if mode&0o222 == 0 {
		d.warnf(rng, "Socket nobody can connect to", "Connecting to a unix socket needs write permission; %q grants it to no one but root.", v.AsString())
	}
	*dst = fmt.Sprintf("%04o", mode)
	return true
}

// parseMode parses "0660", "660" or "0o660".
func parseMode(s string) (uint32, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "0o")
	if t == "" || len(t) > 4 {
		return 0, errors.New("bad length")
	}
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil || n > 0o777 {
		return 0, errors.New("not a permission mode")
	}
	return uint32(n), nil
}

// socketPerms decodes socket_mode, socket_owner and socket_group, which
// the master applies to the listener's unix socket files after binding.
func (d *decoder) socketPerms(attrs hcl.Attributes, unixBinds int, l *Listener) {
	d.socketMode(attrs, &l.SocketMode)
	d.identity(attrs, "socket_owner", "user", &l.SocketOwner)
	d.identity(attrs, "socket_group", "group", &l.SocketGroup)
	if unixBinds > 0 {
		return
	}
	for _, name := range []string{"socket_mode", "socket_owner", "socket_group"} {
		if a, set := attrs[name]; set {
			d.warnf(a.Range, "Argument "+quote(name)+" has no effect without a unix socket", "%s applies to the listener's \"unix:\" binds, and it has none, so the value is ignored.", name)
		}
	}
	l.SocketMode, l.SocketOwner, l.SocketGroup = "", "", ""
}
