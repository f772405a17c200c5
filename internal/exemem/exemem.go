package exemem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mapping is one mapping of the executable, from /proc/self/smaps.
type Mapping struct {
	Start, End uintptr
	Perms      string // as in smaps: "r-xp"
	Rss, Anon  uint64 // resident and anonymous bytes
}

// releasable says whether Release may drop m's pages: private and
// read-only, with nothing written to it that only the mapping holds.
func (m Mapping) releasable() bool {
	return len(m.Perms) == 4 && m.Perms[1] != 'w' && m.Perms[3] == 'p' && m.Anon == 0
}

// Result is what one Release did: the resident bytes of the executable's
// mappings around it (the rest of the process not counted) and how many
// mappings it released.
type Result struct {
	Before, After uint64
	Released      int
}

// file is the executable's identity as smaps prints it.
type file struct {
	major, minor uint32
	ino          uint64
}

// Mappings lists this process's mappings of its executable.
func Mappings() ([]Mapping, error) { return mappings("/proc/self") }

// ProcessMappings lists process pid's mappings of its executable, as
// Mappings does for this one (reading another's needs ptrace rights on
// it).
func ProcessMappings(pid int) ([]Mapping, error) { return mappings(fmt.Sprintf("/proc/%d", pid)) }

func mappings(proc string) ([]Mapping, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(proc+"/exe", &st); err != nil {
		return nil, fmt.Errorf("stat executable: %w", err)
	}
	f, err := os.Open(proc + "/smaps")
	if err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	defer f.Close()
	return parseSmaps(f, file{major: unix.Major(st.Dev), minor: unix.Minor(st.Dev), ino: st.Ino})
}

// Resident sums the resident bytes of ms.
func Resident(ms []Mapping) uint64 {
	var n uint64
	for _, m := range ms {
		n += m.Rss
	}
	return n
}

// Release drops the page table entries of the executable's releasable
// mappings (see the package's invariant) and reports what they held
// before and after.
func Release() (Result, error) {
	ms, err := Mappings()
	if err != nil {
		return Result{}, err
	}
	r := Result{Before: Resident(ms)}
	var errs []error
	for _, m := range ms {
		if !m.releasable() || m.Rss == 0 {
			continue
		}
		if err := madvise(m.Start, m.End-m.Start, unix.MADV_DONTNEED); err != nil {
			errs = append(errs, fmt.Errorf("release %x-%x: %w", m.Start, m.End, err))
			continue
		}
		r.Released++
	}
	if ms, err = Mappings(); err != nil {
		errs = append(errs, err)
	}
	r.After = Resident(ms)
	return r, errors.Join(errs...)
}

// madvise takes the range as numbers: the mappings are the binary's own,
// outside the Go heap, and no Go value points into them as a []byte.
func madvise(start, n uintptr, advice int) error {
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, start, n, uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

// parseSmaps picks exe's mappings out of smaps: a header line per
// mapping ("start-end perms offset major:minor inode path"), then its
// "Key: value kB" lines.
//
// It reads line by line and splits without allocating: the worker reads
// its smaps twice at the start, and their 40 KiB would otherwise be
// garbage left in a heap that has not collected yet.
func parseSmaps(r io.Reader, exe file) ([]Mapping, error) {
	var (
		out  []Mapping
		cur  *Mapping
		line int
		fbuf [8][]byte
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line++
		f := fields(sc.Bytes(), fbuf[:0])
		if len(f) == 0 {
			continue
		}
		if k := f[0]; k[len(k)-1] == ':' {
			if cur == nil || len(f) < 2 {
				continue
			}
			switch string(k) {
			case "Rss:", "Anonymous:":
				kb, err := strconv.ParseUint(string(f[1]), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("smaps line %d: %w", line, err)
				}
				if k[0] == 'R' {
					cur.Rss = kb << 10
				} else {
					cur.Anon = kb << 10
				}
			}
			continue
		}
		cur = nil
		m, ok, err := header(f, exe)
		if err != nil {
			return nil, fmt.Errorf("smaps line %d: %w", line, err)
		}
		if ok {
			out = append(out, m)
			cur = &out[len(out)-1]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	return out, nil
}

// fields appends the space-separated fields of b to f, up to cap(f).
func fields(b []byte, f [][]byte) [][]byte {
	for len(f) < cap(f) {
		b = bytes.TrimLeft(b, " \t")
		if len(b) == 0 {
			break
		}
		i := bytes.IndexAny(b, " \t")
		if i < 0 {
			i = len(b)
		}
		f, b = append(f, b[:i]), b[i:]
	}
	return f
}

// header reads one mapping's header line, and whether it maps exe.
func header(f [][]byte, exe file) (Mapping, bool, error) {
	if len(f) < 5 {
		return Mapping{}, false, fmt.Errorf("mapping header %q: want 5 fields or more", bytes.Join(f, []byte(" ")))
	}
	ino, err := strconv.ParseUint(string(f[4]), 10, 64)
	if err != nil {
		return Mapping{}, false, fmt.Errorf("mapping inode: %w", err)
	}
	maj, min, ok := bytes.Cut(f[3], []byte(":"))
	if !ok {
		return Mapping{}, false, fmt.Errorf("mapping device %q: want major:minor", f[3])
	}
	ma, err1 := strconv.ParseUint(string(maj), 16, 32)
	mi, err2 := strconv.ParseUint(string(min), 16, 32)
	if err := errors.Join(err1, err2); err != nil {
		return Mapping{}, false, fmt.Errorf("mapping device: %w", err)
	}
	if ino != exe.ino || uint32(ma) != exe.major || uint32(mi) != exe.minor {
		return Mapping{}, false, nil
	}
	lo, hi, ok := bytes.Cut(f[0], []byte("-"))
	if !ok {
		return Mapping{}, false, fmt.Errorf("mapping range %q: want start-end", f[0])
	}
	s, err1 := strconv.ParseUint(string(lo), 16, 64)
	e, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Mapping{}, false, fmt.Errorf("mapping range %q: %w", f[0], err)
	}
	if e <= s {
		return Mapping{}, false, fmt.Errorf("mapping range %q: end not after start", f[0])
	}
	return Mapping{Start: uintptr(s), End: uintptr(e), Perms: string(f[1])}, true, nil
}
