package hclconfig

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "64KiB": 64 << 10, "64 kib": 64 << 10, "512KB": 512_000,
		"1MiB": 1 << 20, "10 MB": 10_000_000, "10MiB": 10 << 20, "2GiB": 2 << 30, "2GB": 2e9, "100B": 100, " 7 ": 7,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "ten", "1TiB", "9999999999GiB", "1.5M"} {
		if got, err := parseSize(in); err == nil || errors.Is(err, errSizeAmbiguous) {
			t.Errorf("parseSize(%q) = %d, %v; want a syntax error", in, got, err)
		}
	}
	for _, in := range []string{"512K", "10M", "1 g", "10m"} {
		if got, err := parseSize(in); !errors.Is(err, errSizeAmbiguous) {
			t.Errorf("parseSize(%q) = %d, %v; want errSizeAmbiguous", in, got, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 1500: "1500", 1024: "1KiB", 1000: "1KB", 10_000_000: "10MB", 2e9: "2GB", 1 << 20: "1MiB", 100 << 20: "100MiB", 3 << 30: "3GiB", 1<<20 + 1: "1048577",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", n, back, err)
		}
	}
}
