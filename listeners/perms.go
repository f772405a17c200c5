package listeners

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// Bind is one address the master listens on. Mode, Owner and Group apply
// to a unix socket file right after it is bound (and again on every
// Prepare, so a reload that changes them takes effect on a kept socket);
// empty leaves the file as bound. They have no meaning for TCP.
type Bind struct {
	Addr  string
	Mode  string // octal, like "0660"
	Owner string // user name or id
	Group string // group name or id
}

// Addrs returns the addresses of binds, in order.
func Addrs(binds []Bind) []string {
	out := make([]string, len(binds))
	for i, b := range binds {
		out[i] = b.Addr
	}
	return out
}

func (b Bind) hasPerms() bool { return b.Mode != "" || b.Owner != "" || b.Group != "" }

// perms is a Bind's permissions resolved for chmod and chown; -1 leaves an
// id unchanged.
type perms struct {
	mode     os.FileMode
	hasMode  bool
	uid, gid int
}

func (b Bind) resolve() (perms, error) {
	p := perms{uid: -1, gid: -1}
	if b.Mode != "" {
		m, err := strconv.ParseUint(b.Mode, 8, 32)
		if err != nil || m > 0o777 {
			return p, fmt.Errorf("socket mode %q: not an octal permission mode", b.Mode)
		}
		p.mode, p.hasMode = os.FileMode(m), true
	}
	if b.Owner != "" {
		u, err := lookupID(b.Owner, user.Lookup, func(u *user.User) string { return u.Uid })
		if err != nil {
			return p, fmt.Errorf("socket owner: %w", err)
		}
		p.uid = u
	}
	if b.Group != "" {
		g, err := lookupID(b.Group, user.LookupGroup, func(g *user.Group) string { return g.Gid })
		if err != nil {
			return p, fmt.Errorf("socket group: %w", err)
		}
		p.gid = g
	}
	return p, nil
}

// lookupID resolves a name, or takes a number as the id itself.
func lookupID[T any](name string, lookup func(string) (*T, error), id func(*T) string) (int, error) {
	v, err := lookup(name)
	if err != nil {
		if n, nerr := strconv.Atoi(name); nerr == nil && n >= 0 {
			return n, nil
		}
		return 0, err
	}
	return strconv.Atoi(id(v))
}

// restrictiveUmask is in force while a unix socket with a configured mode
// is bound, so that nobody can connect in the moment before chmod.
const restrictiveUmask = 0o177

// applyPerms sets the mode and owner of the socket file s bound. It refuses
// to touch a path that is no longer that socket: the master runs as root,
// and whoever may write in the socket's directory could swap the socket
// for a symlink to a file they want root to chmod. So the file is opened
// once with O_PATH|O_NOFOLLOW (a symlink is refused), checked to be our
// socket, and changed through that descriptor, never by name again.
func (s *Socket) applyPerms(p perms) error {
	if s.unixPath == "" {
		return nil
	}
	fd, err := unix.Open(s.unixPath, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket file %s: %w", s.unixPath, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("socket file %s: %w", s.unixPath, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || (s.unixIno != 0 && st.Ino != s.unixIno) {
		return fmt.Errorf("socket file %s: %w", s.unixPath, errNotOurSocket)
	}
	if p.uid >= 0 || p.gid >= 0 {
		if err := unix.Fchownat(fd, "", p.uid, p.gid, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("chown socket file: %w", err)
		}
	}
	if p.hasMode {
		// fchmod refuses O_PATH descriptors; the /proc link names the
		// inode the descriptor holds, not whatever the path names now.
		if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), uint32(p.mode)); err != nil {
			return fmt.Errorf("chmod socket file: %w", err)
		}
	}
	return nil
}

var errNotOurSocket = errors.New("replaced by another file since it was bound")
