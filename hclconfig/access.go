package hclconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
)

// CheckAccess checks what the running server will need from the file
// system, as the identity that will need it: the master writes the
// pidfile and its log and binds unix sockets; workers open access logs,
// read static roots and run exec commands and app listeners' python as
// the listener's user and group. It answers from permission bits and
// ownership, without switching users, so `hfork -t` run as root in CI or in
// ExecStartPre tells what a nobody worker will meet. POSIX ACLs and mount options are not read: an
// ACL may grant more than the bits say, a read-only mount refuse more.
//
// The master is the identity running this check (hfork -t is meant to run
// as the server will). Certificates and keys are read by Parse already, as
// the master, which is who reads them.
//
// files are Parse's, used to point each diagnostic at its setting.
func CheckAccess(c Config, files map[string]*hcl.File) hcl.Diagnostics {
	a := &accessCheck{loc: newLocator(files)}
	master := currentIdentity()
	if c.Pidfile != "" {
		rng := a.loc.attr("pidfile")
		a.writableDir(rng, "pidfile", filepath.Dir(c.Pidfile), master, " (under systemd, RuntimeDirectory=hfork makes /run/hfork)")
	}
	if c.Log.File != "" {
		a.openForAppend(a.loc.attr("file", block{"log"}), "log file", c.Log.File, master)
	}
	for _, l := range c.Listeners {
		lb := block{"listener", l.Name}
		worker, err := workerIdentity(l, master)
		if err != nil {
			a.errorf(a.loc.attr("user", lb), "Cannot look up the workers' user", "Listener %q: %v.", l.Name, err)
			continue
		}
		for _, b := range l.Bind {
			if p, ok := strings.CutPrefix(b, "unix:"); ok {
				a.writableDir(a.loc.attr("bind", lb), "unix socket", filepath.Dir(p), master, "")
			}
		}
		if f := l.AccessLog.File; f != "" && f != "-" {
			a.openForAppend(a.loc.attr("file", lb, block{"access_log"}), "access log", f, worker)
		}
		a.staticRoots(l.Routes, worker, lb)
		a.bodyTempDirs(l.Routes, worker, lb)
		for _, h := range l.Hosts {
			a.staticRoots(h.Routes, worker, lb, block{"host", h.Label})
			a.bodyTempDirs(h.Routes, worker, lb, block{"host", h.Label})
		}
		if l.Class == ClassExec && len(l.Command) > 0 {
			if l.Dir != "" {
				a.searchableDir(a.loc.attr("dir", lb), "dir", l.Dir, worker)
			}
			a.command(a.loc.attr("command", lb), "command", l.Command[0], l.Dir, l.Env["PATH"], worker)
		}
		if l.App != "" {
			if l.Dir != "" {
				a.searchableDir(a.loc.attr("dir", lb), "dir", l.Dir, worker)
			}
			a.command(a.loc.attr("python", lb), "python", l.Python, l.Dir, l.Env["PATH"], worker)
		}
	}
	sortDiagnostics(a.diags)
	return a.diags
}

type accessCheck struct {
	loc   locator
	diags hcl.Diagnostics
}

func (a *accessCheck) errorf(rng hcl.Range, summary, format string, args ...any) {
	a.diags = append(a.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng.Ptr()})
}

// writableDir: dir exists and who may create entries in it.
func (a *accessCheck) writableDir(rng hcl.Range, what, dir string, who identity, hint string) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.errorf(rng, "Missing "+what+" directory", "%s does not exist, so the %s cannot be created in it; create it%s.", dir, what, hint)
		return
	case err != nil:
		a.errorf(rng, "Unreadable "+what+" directory", "%v.", err)
		return
	case !fi.IsDir():
		a.errorf(rng, "Not a directory", "%s, where the %s goes, is not a directory.", dir, what)
		return
	}
	if err := who.access(dir, permW|permX); err != nil {
		a.errorf(rng, capitalize(what)+" directory not writable", "%s cannot create the %s in %s: %v.", who, what, dir, err)
	}
}

// openForAppend: what O_CREATE|O_APPEND needs, and a directory to reopen
// into after logrotate renamed the file away.
func (a *accessCheck) openForAppend(rng hcl.Range, what, path string, who identity) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		a.errorf(rng, "Missing "+what+" directory", "%s does not exist, so the %s %s cannot be opened; create it (under systemd, LogsDirectory=hfork makes /var/log/hfork).", dir, what, path)
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		a.errorf(rng, capitalize(what)+" is a directory", "%s is a directory, not a file to append to.", path)
	case err == nil:
		if aerr := who.access(path, permW); aerr != nil {
			a.errorf(rng, capitalize(what)+" not writable", "%s cannot append to %s: %v.", who, path, aerr)
			return
		}
		if aerr := who.access(dir, permW|permX); aerr != nil {
			a.errorf(rng, capitalize(what)+" directory not writable", "%s can append to %s but not create it again in %s after a log rotation: %v.", who, path, dir, aerr)
		}
	default:
		if aerr := who.access(dir, permW|permX); aerr != nil {
			a.errorf(rng, capitalize(what)+" directory not writable", "%s cannot create %s: %v.", who, path, aerr)
		}
	}
}

// staticRoots checks the roots of the static apps among routes, which
// sit inside the blocks of at.
func (a *accessCheck) staticRoots(routes []Route, who identity, at ...block) {
	for _, r := range routes {
		if r.App == AppStatic {
			path := append(append([]block{}, at...), block{"route", r.Prefix}, block{AppStatic})
			a.readableDir(a.loc.attr("root", path...), "static root", r.Static.Root, who)
		}
	}
}

// bodyTempDirs checks that the workers may create the temporary files of
// buffered request bodies in each proxy's body_temp_dir. A missing
// directory is Parse's diagnostic already.
func (a *accessCheck) bodyTempDirs(routes []Route, who identity, at ...block) {
	for _, r := range routes {
		dir := r.Proxy.BodyTempDir
		if r.App != AppProxy || !r.Proxy.RequestBuffering || dir == "" {
			continue
		}
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		path := append(append([]block{}, at...), block{"route", r.Prefix}, block{AppProxy})
		if err := who.access(dir, permW|permX); err != nil {
			a.errorf(a.loc.attr("body_temp_dir", path...), "Body temp directory not writable", "%s cannot create the temporary files of request bodies in %s: %v.", who, dir, err)
		}
	}
}

// readableDir: who may list dir and open what is in it. A missing
// directory is Parse's diagnostic already.
func (a *accessCheck) readableDir(rng hcl.Range, what, dir string, who identity) {
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if err := who.access(dir, permR|permX); err != nil {
		a.errorf(rng, capitalize(what)+" not readable", "%s cannot read %s: %v.", who, dir, err)
	}
}

// searchableDir: who may make dir its working directory.
func (a *accessCheck) searchableDir(rng hcl.Range, what, dir string, who identity) {
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if err := who.access(dir, permX); err != nil {
		a.errorf(rng, "Working directory not accessible", "%s cannot enter %s (%s): %v.", who, dir, what, err)
	}
}

// command checks that program, as an exec listener's command[0] (or an
// app listener's python interpreter) names, is found and executable by
// who: a name with a slash relative to dir, a bare name on path (the
// listener's PATH, else the master's, which workers inherit).
func (a *accessCheck) command(rng hcl.Range, what, program, dir, path string, who identity) {
	if !strings.Contains(program, "/") {
		if path == "" {
			path = os.Getenv("PATH")
		}
		for _, d := range filepath.SplitList(path) {
			if d == "" {
				d = "."
			}
			if !filepath.IsAbs(d) {
				d = filepath.Join(dir, d)
			}
			cand := filepath.Join(d, program)
			if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() && who.access(cand, permX) == nil {
				return
			}
		}
		a.errorf(rng, "Program not found", "%s: no file named %q that %s may execute in PATH (%s).", what, program, who, path)
		return
	}
	full := program
	if !filepath.IsAbs(full) {
		full = filepath.Join(dir, full)
	}
	fi, err := os.Stat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.errorf(rng, "Program not found", "%s: %s does not exist.", what, full)
	case err != nil:
		a.errorf(rng, "Program not found", "%s: %v.", what, err)
	case !fi.Mode().IsRegular():
		a.errorf(rng, "Program not a file", "%s: %s is not a regular file.", what, full)
	default:
		if aerr := who.access(full, permX); aerr != nil {
			a.errorf(rng, "Program not executable", "%s: %s cannot execute %s: %v.", what, who, full, aerr)
		}
	}
}

const (
	permR = 4
	permW = 2
	permX = 1
)

// identity is a uid and the groups it holds, as the kernel checks them.
type identity struct {
	label  string // for messages: `workers as user "nobody"`, `the master (user "root")`
	name   string // `user "root"`, or "uid 1000" when it has no name
	uid    uint32
	groups []uint32
}

func (id identity) String() string { return id.label }

func currentIdentity() identity {
	id := identity{uid: uint32(os.Geteuid()), groups: []uint32{uint32(os.Getegid())}}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			id.groups = append(id.groups, uint32(g))
		}
	}
	id.name = "uid " + strconv.Itoa(int(id.uid))
	if u, err := user.LookupId(strconv.Itoa(int(id.uid))); err == nil {
		id.name = "user " + quote(u.Username)
	}
	id.label = "the master (" + id.name + ")"
	return id
}

// workerIdentity is who l's workers run as: its user, in that user's
// primary group unless group says otherwise, with no supplementary groups
// (pool's credential rule); the master itself when neither is set.
func workerIdentity(l Listener, master identity) (identity, error) {
	if l.User == "" && l.Group == "" {
		id := master
		id.label = "workers (as the master, " + master.name + ")"
		return id, nil
	}
	id := identity{uid: master.uid, groups: master.groups[:1]}
	var names []string
	if l.User != "" {
		u, err := lookupUserEntry(l.User)
		if err != nil {
			return id, err
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		id.uid, id.groups = uint32(uid), []uint32{uint32(gid)}
		names = append(names, "user "+quote(l.User))
	}
	if l.Group != "" {
		g, err := user.LookupGroup(l.Group)
		if err != nil {
			if g, err = user.LookupGroupId(l.Group); err != nil {
				return id, fmt.Errorf("group %q: %w", l.Group, err)
			}
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		id.groups = []uint32{uint32(gid)}
		names = append(names, "group "+quote(l.Group))
	}
	id.label = "workers as " + strings.Join(names, " and ")
	return id, nil
}

func lookupUserEntry(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	return u, nil
}

// access reports whether id may use path with the want bits, and may
// search every directory on the way to it. Symlinks are resolved first,
// so the directories checked are those the kernel walks.
func (id identity) access(path string, want uint32) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	dirs := []string{}
	for d := filepath.Dir(real); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == "/" || d == "." {
			break
		}
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := id.allows(d, permX); err != nil {
			return err
		}
	}
	return id.allows(real, want)
}

// allows checks one file's mode bits the way the kernel picks them: the
// owner's if id owns it, else the group's if id holds its group, else
// the others'. Root passes every check but executing a file with no x bit.
func (id identity) allows(path string, want uint32) error {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	mode := st.Mode & 0o777
	isDir := st.Mode&syscall.S_IFMT == syscall.S_IFDIR
	if id.uid == 0 {
		if want&permX != 0 && !isDir && mode&0o111 == 0 {
			return fmt.Errorf("%s has no execute bit (mode %s)", path, fs.FileMode(mode))
		}
		return nil
	}
	var bits uint32
	switch {
	case st.Uid == id.uid:
		bits = mode >> 6
	case slices.Contains(id.groups, st.Gid):
		bits = mode >> 3
	default:
		bits = mode
	}
	if bits&7&want == want {
		return nil
	}
	return fmt.Errorf("%s is %s, owned by %s:%s", path, describeMode(st.Mode), userName(st.Uid), groupName(st.Gid))
}

func describeMode(m uint32) string {
	fm := fs.FileMode(m & 0o777)
	if m&syscall.S_IFMT == syscall.S_IFDIR {
		fm |= fs.ModeDir
	}
	return fm.String()
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return u.Username
	}
	return strconv.Itoa(int(uid))
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(gid))
}

func fileOwner(fi fs.FileInfo) (uid, gid uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid
	}
	return 0, 0
}
