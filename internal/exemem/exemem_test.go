package exemem

import (
	"fmt"
	"hash/crc32"
	"os"
	"runtime"
	"strings"
	"testing"
)

var exe = file{major: 0xfd, minor: 1, ino: 4242}

const smaps = `00400000-00b8f000 r-xp 00000000 fd:01 4242                               /srv/hfork
Size:               7740 kB
Rss:                6204 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00b8f000-0135b000 r--p 0078f000 fd:01 4242                               /srv/hfork (deleted)
Rss:                5744 kB
Anonymous:             0 kB
0135b000-013f5000 rw-p 00f5b000 fd:01 4242                               /srv/hfork
Rss:                 360 kB
Anonymous:           104 kB
013f5000-01400000 r--p 00ff5000 fd:01 4242                               /srv/hfork
Rss:                  12 kB
Anonymous:             4 kB
02000000-02001000 r--p 00000000 fd:02 4242                               /other/fs/same/inode
Rss:                   4 kB
Anonymous:             0 kB
7f31ad720000-7f31ad900000 rw-p 00000000 00:00 0 
Rss:                 368 kB
Anonymous:           368 kB
7f31f43dd000-7f31f43df000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
`

func TestParseSmaps(t *testing.T) {
	ms, err := parseSmaps(strings.NewReader(smaps), exe)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		m          string
		releasable bool
	}{
		{"400000-b8f000 r-xp rss 6352896 anon 0", true},
		{"b8f000-135b000 r--p rss 5881856 anon 0", true}, // replaced on disk: still the executable
		{"135b000-13f5000 rw-p rss 368640 anon 106496", false},
		{"13f5000-1400000 r--p rss 12288 anon 4096", false}, // a page written once: not the file's any more
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d mappings %v, want %d", len(ms), ms, len(want))
	}
	for i, m := range ms {
		got := fmt.Sprintf("%x-%x %s rss %d anon %d", m.Start, m.End, m.Perms, m.Rss, m.Anon)
		if got != want[i].m || m.releasable() != want[i].releasable {
			t.Errorf("mapping %d: %s releasable %v, want %s releasable %v", i, got, m.releasable(), want[i].m, want[i].releasable)
		}
	}
	if got := Resident(ms); got != (6204+5744+360+12)<<10 {
		t.Errorf("resident %d", got)
	}
}

func TestParseSmapsRejectsGarbage(t *testing.T) {
	for _, bad := range []string{
		"00400000 r-xp 00000000 fd:01 4242 /srv/hfork\n",
		"00400000-00300000 r-xp 00000000 fd:01 4242 /srv/hfork\n",
		"00400000-00500000 r-xp 00000000 fd01 4242 /srv/hfork\n",
		"00400000-00500000 r-xp 00000000 fd:01 x /srv/hfork\n",
		"00400000-00500000 r-xp 00000000 fd:01 4242 /srv/hfork\nRss: many kB\n",
	} {
		if ms, err := parseSmaps(strings.NewReader(bad), exe); err == nil {
			t.Errorf("%q: no error, mappings %v", bad, ms)
		}
	}
}

// sample is a constant: its bytes lie in the executable's read-only data.
const sample = "a constant the linker puts in the executable's read-only data, " +
	"read again after its page was released"

// Release on this test binary: every page of its read-only mappings is
// made resident first (a read of /proc/self/mem maps them, as a fault
// would); after the release fewer are, and its constants read back the
// same. (pool/worker's test measures a worker's executable pages.)
func TestRelease(t *testing.T) {
	ms, err := Mappings()
	if err != nil {
		t.Fatal(err)
	}
	var size uint64
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	buf := make([]byte, 1<<20)
	for _, m := range ms {
		if !m.releasable() {
			continue
		}
		size += uint64(m.End - m.Start)
		for at := m.Start; at < m.End; at += uintptr(len(buf)) {
			n := min(uintptr(len(buf)), m.End-at)
			if _, err := mem.ReadAt(buf[:n], int64(at)); err != nil {
				t.Fatalf("read %x: %v", at, err)
			}
		}
	}
	if size == 0 {
		t.Fatalf("no releasable mapping of the executable among %v", ms)
	}
	sum := crc32.ChecksumIEEE([]byte(sample))

	r, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("releasable %d KiB; resident %d KiB before, %d KiB after, %d mappings released", size>>10, r.Before>>10, r.After>>10, r.Released)
	if r.Before < size {
		t.Errorf("resident before %d, want at least the %d read", r.Before, size)
	}
	// Every page was resident; what is again is what ran in between.
	if r.Released == 0 || r.After >= r.Before {
		t.Errorf("released %d mappings, resident %d after, %d before", r.Released, r.After, r.Before)
	}
	// The pages come back from the file as they were: the process runs on.
	runtime.GC()
	if got := crc32.ChecksumIEEE([]byte(sample)); got != sum || !strings.HasPrefix(sample, "a constant") {
		t.Errorf("the constant read back changed: crc %x, was %x", got, sum)
	}
}
