package pool

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"github.com/hfork/hfork/hclconfig"
)

// ErrNeedRoot is wrapped when a listener's user or group differs from
// hfork's own and hfork is not root, so it cannot switch to them.
var ErrNeedRoot = errors.New("switching user or group needs hfork to run as root")

// CheckUser reports, before anything starts, whether workers of l can be
// started as its user and group here: they exist, and hfork may switch to
// them.
func CheckUser(l hclconfig.Listener) error {
	if _, err := credential(l); err != nil {
		return fmt.Errorf("listener %s: %w", l.Name, err)
	}
	return nil
}

// credential is the identity l's workers run as, nil for hfork's own. A
// user without a group runs in the user's primary group; a group without a
// user keeps hfork's uid. Supplementary groups are cleared: a worker holds
// exactly the one group it was given.
func credential(l hclconfig.Listener) (*syscall.Credential, error) {
	if l.User == "" && l.Group == "" {
		return nil, nil
	}
	uid, gid := os.Getuid(), os.Getgid()
	if l.User != "" {
		u, err := lookupUser(l.User)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", l.User, err)
		}
		if uid, err = strconv.Atoi(u.Uid); err != nil {
			return nil, fmt.Errorf("user %q: uid %q: %w", l.User, u.Uid, err)
		}
		if gid, err = strconv.Atoi(u.Gid); err != nil {
			return nil, fmt.Errorf("user %q: gid %q: %w", l.User, u.Gid, err)
		}
	}
	if l.Group != "" {
		g, err := lookupGroup(l.Group)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", l.Group, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("group %q: gid %q: %w", l.Group, g.Gid, err)
		}
	}
	if os.Geteuid() != 0 {
		if uid == os.Getuid() && gid == os.Getgid() {
			return nil, nil // already who the workers should be
		}
		return nil, fmt.Errorf("%w: user %q, group %q (hfork runs as uid %d, gid %d)", ErrNeedRoot, l.User, l.Group, os.Getuid(), os.Getgid())
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// lookupUser finds a user by name, or by id when the name is a number.
func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	if _, nerr := strconv.Atoi(name); nerr == nil {
		return user.LookupId(name)
	}
	return nil, err
}

func lookupGroup(name string) (*user.Group, error) {
	g, err := user.LookupGroup(name)
	if err == nil {
		return g, nil
	}
	if _, nerr := strconv.Atoi(name); nerr == nil {
		return user.LookupGroupId(name)
	}
	return nil, err
}
