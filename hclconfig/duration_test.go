package hclconfig

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"30s":   30 * time.Second,
		"250ms": 250 * time.Millisecond,
		"1m30s": 90 * time.Second,
		" 5m ":  5 * time.Minute,
		"0":     0,
		"0s":    0,
		"1.5h":  90 * time.Minute,
		"100us": 100 * time.Microsecond,
	}
	for in, want := range good {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}

	for in, want := range map[string]error{
		"30":   errNoUnit,
		"1.5":  errNoUnit,
		"-30":  errNoUnit,
		"-5s":  errNegative,
		"-1ms": errNegative,
	} {
		if _, err := parseDuration(in); !errors.Is(err, want) {
			t.Errorf("parseDuration(%q) error = %v; want %v", in, err, want)
		}
	}
	for _, in := range []string{"", "5 minutes", "s", "1d", "30 s", "1h2m3s4"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) succeeded; want an error", in)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                    "0s",
		250 * time.Millisecond:               "250ms",
		30 * time.Second:                     "30s",
		90 * time.Second:                     "1m30s",
		5 * time.Minute:                      "5m",
		time.Hour:                            "1h",
		90 * time.Minute:                     "1h30m",
		time.Hour + time.Second:              "1h0m1s",
		1500 * time.Millisecond:              "1.5s",
		2*time.Minute + 500*time.Millisecond: "2m0.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q; want %q", d, got, want)
		}
		back, err := parseDuration(formatDuration(d))
		if err != nil || back != d {
			t.Errorf("parseDuration(formatDuration(%v)) = %v, %v", d, back, err)
		}
	}
}
