package engine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hfork/hfork/pool"
	"github.com/hfork/hfork/pool/wire"
)

// upgradeOp is a binary upgrade in flight: the new master runs, and the old
// one waits for its word before draining.
type upgradeOp struct {
	pid      int
	deadline time.Time
	ready    bool
	killed   bool
	started  time.Time
}

// upgradeReady is the event the pipe reader sends when the child says ready.
type upgradeReady struct{ pid int }

// parentLink is the pipe to the old master, in a master started by an
// upgrade.
type parentLink struct {
	f *os.File
}

func takeParentLink() *parentLink {
	v := os.Getenv(wire.EnvUpgradeFD)
	os.Unsetenv(wire.EnvUpgradeFD)
	fd, err := strconv.Atoi(v)
	if v == "" || err != nil || fd < 3 {
		return nil
	}
	syscall.CloseOnExec(fd)
	return &parentLink{f: os.NewFile(uintptr(fd), "upgrade")}
}

// binaryPath resolves the binary this master was started from again now,
// so a file replaced on disk is what runs next (not /proc/self/exe, which
// still names the old inode).
func (m *Master) binaryPath() (string, error) {
	argv0 := m.opts.Argv[0]
	if strings.Contains(argv0, "/") {
		if !filepath.IsAbs(argv0) {
			argv0 = filepath.Join(m.opts.Dir, argv0)
		}
		return argv0, nil
	}
	return exec.LookPath(argv0)
}

func (m *Master) startUpgrade() {
	switch {
	case m.stopping != running:
		return
	case m.upg != nil:
		m.log.Warn("upgrade already in progress; USR2 ignored", "new_pid", m.upg.pid)
		return
	case m.op != nil:
		m.log.Warn("a reload is in flight; USR2 ignored, send it again once the reload ends")
		return
	}
	path, err := m.binaryPath()
	if err != nil {
		m.log.Error("upgrade failed; keeping this master", "err", err)
		m.noteUpgrade(time.Now(), err)
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		m.log.Error("upgrade failed; keeping this master", "err", err)
		m.noteUpgrade(time.Now(), err)
		return
	}
	socks := m.sockets.All()
	files := make([]*os.File, 0, len(socks)+1)
	for _, s := range socks {
		files = append(files, s.File)
	}
	files = append(files, w)
	env := append(wire.Environ(nil),
		wire.EnvListenFDs+"="+strconv.Itoa(len(socks)),
		wire.EnvUpgrade+"=1",
		wire.EnvUpgradeFD+"="+strconv.Itoa(wire.FirstFD+len(socks)),
	)
	if m.systemd.addr != "" {
		env = append(env, wire.EnvNotifySocket+"="+m.systemd.addr)
	}
	if m.pidfile != "" {
		if err := os.Rename(m.pidfile, m.pidfile+".oldbin"); err != nil && !os.IsNotExist(err) {
			m.log.Warn("upgrade: cannot move pidfile aside", "err", err)
		}
	}
	cmd := &exec.Cmd{Path: path, Args: append([]string{m.opts.Argv[0]}, m.opts.Argv[1:]...), Dir: m.opts.Dir,
		Env: env, ExtraFiles: files, Stdout: os.Stdout, Stderr: os.Stderr}
	pid, err := m.os.StartMaster(cmd)
	w.Close()
	if err != nil {
		r.Close()
		m.restorePidfile()
		m.log.Error("upgrade failed; keeping this master", "binary", path, "err", err)
		m.noteUpgrade(time.Now(), err)
		return
	}
	boot := time.Duration(0)
	for _, l := range m.cfg.Listeners {
		boot = max(boot, l.BootTimeout)
	}
	now := m.os.Now()
	m.upg = &upgradeOp{pid: pid, deadline: now.Add(boot + 5*time.Second), started: now}
	m.log.Info("upgrade: new master started", "binary", path, "new_pid", pid)
	go func() {
		defer r.Close()
		line, _ := bufio.NewReader(r).ReadString('\n')
		if strings.TrimSpace(line) == "ready" {
			m.events <- upgradeReady{pid: pid}
		}
	}()
}

func (m *Master) restorePidfile() {
	if m.pidfile != "" {
		os.Rename(m.pidfile+".oldbin", m.pidfile)
	}
}

// checkUpgrade enforces the new master's deadline and hands over once it
// is ready.
func (m *Master) checkUpgrade() {
	u := m.upg
	if u.ready {
		m.upg = nil
		m.log.Info("upgrade: new master is ready; draining this one", "new_pid", u.pid)
		m.os.Release(u.pid)
		m.noteUpgrade(u.started, nil)
		m.handedOver = true
		m.successor = u.pid
		m.shutdown(graceful)
		return
	}
	if !u.killed && m.os.Now().After(u.deadline) {
		m.log.Error("upgrade: new master not ready in time; stopping it", "new_pid", u.pid)
		u.killed = true
		m.os.Signal(u.pid, syscall.SIGKILL)
	}
}

// upgradeChildExited handles the new master exiting before it was ready.
func (m *Master) upgradeChildExited(ev pool.ExitEvent) {
	u := m.upg
	m.upg = nil
	m.os.Release(u.pid)
	m.restorePidfile()
	m.log.Error("upgrade failed: new master exited; keeping this master", "new_pid", u.pid, "status", pool.DescribeStatus(ev.Status))
	m.noteUpgrade(u.started, fmt.Errorf("new master exited: %s", pool.DescribeStatus(ev.Status)))
}

// abortUpgrade stops a new master that has not reported ready.
func (m *Master) abortUpgrade(why string) {
	if m.upg == nil || m.upg.ready {
		return
	}
	m.log.Warn("upgrade aborted", "new_pid", m.upg.pid, "reason", why)
	m.upg.killed = true
	m.os.Signal(m.upg.pid, syscall.SIGKILL)
}

// becameReady runs once every pool is ready for the first time.
func (m *Master) becameReady() {
	if m.parent != nil {
		// This master is the upgrade: it succeeded once it is ready.
		m.noteUpgrade(m.hist.started, nil)
		for _, p := range m.pools {
			p.Promote()
		}
		fmt.Fprintln(m.parent.f, "ready")
		m.parent.f.Close()
		m.parent = nil
		if m.pidfile != "" {
			if err := WritePidfile(m.pidfile, os.Getpid()); err != nil {
				m.log.Error("write pidfile", "err", err)
			}
			m.listenControl()
		}
		m.systemd.send("MAINPID=" + strconv.Itoa(os.Getpid()) + "\nREADY=1\nSTATUS=serving")
		return
	}
	m.systemd.send("READY=1\nSTATUS=serving")
}
