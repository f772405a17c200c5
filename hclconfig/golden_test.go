package hclconfig

import (
	"bytes"
	"flag"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected part of testdata/*.hcltest")

// separator splits a golden case into the config and what Parse makes of
// it: the diagnostics as WriteDiagnostics writes them, then, when there is
// no error, the Format output.
const separator = "\n----------\n"

// TestGolden runs every testdata/*.hcltest. Cases named valid_* must parse
// without errors and round-trip through Format; invalid_* must fail.
func TestGolden(t *testing.T) {
	stableDefaults(t)
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join("testdata", "*.hcltest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/*.hcltest cases")
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".hcltest")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), separator)
			if !ok {
				t.Fatalf("%s has no %q separator line", path, strings.TrimSpace(separator))
			}
			input += "\n" // the separator's first newline ends the config

			c, files, diags := Parse(path, []byte(input))
			var out bytes.Buffer
			if err := WriteDiagnostics(&out, files, diags, false); err != nil {
				t.Fatal(err)
			}
			if !diags.HasErrors() {
				out.Write(Format(c))
			}
			got := strings.ReplaceAll(out.String(), dir, "$DIR")

			switch {
			case strings.HasPrefix(name, "valid_") && diags.HasErrors():
				t.Errorf("a valid case has errors")
			case strings.HasPrefix(name, "invalid_") && !diags.HasErrors():
				t.Errorf("an invalid case has no error")
			case !strings.HasPrefix(name, "valid_") && !strings.HasPrefix(name, "invalid_"):
				t.Errorf("name the case valid_* or invalid_*")
			}
			if !diags.HasErrors() {
				roundTrip(t, path, c)
			}

			if *update {
				if err := os.WriteFile(path, []byte(strings.TrimSuffix(input, "\n")+separator+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: output differs (run go test ./hclconfig -update to accept)\n--- got:\n%s\n--- want:\n%s", path, got, want)
			}
		})
	}
}

// roundTrip checks that Format prints what parses back to c, without a
// single diagnostic.
func roundTrip(t *testing.T, path string, c Config) {
	t.Helper()
	src := Format(c)
	back, files, diags := Parse(path, src)
	if len(diags) > 0 {
		var b bytes.Buffer
		WriteDiagnostics(&b, files, diags, false)
		t.Fatalf("Format output does not parse cleanly:\n%s\n%s", b.String(), src)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Format output parses to a different config:\n%#v\nwant\n%#v", back, c)
	}
}

// fakeUsers replaces the user and group lookups with a fixed table, so
// cases do not depend on the machine's /etc/passwd.
func fakeUsers(t *testing.T) {
	t.Helper()
	su, sg := lookupUser, lookupGroup
	t.Cleanup(func() { lookupUser, lookupGroup = su, sg })
	known := func(kind string, names ...string) func(string) error {
		return func(n string) error {
			if slices.Contains(names, n) {
				return nil
			}
			if kind == "user" {
				return user.UnknownUserError(n)
			}
			return user.UnknownGroupError(n)
		}
	}
	lookupUser = known("user", "nobody", "www-data", "65534")
	lookupGroup = known("group", "nogroup", "www-data", "65534")
}

// stableDefaults makes the output independent of the machine: the worker
// count defaults to the number of CPUs.
func stableDefaults(t *testing.T) {
	t.Helper()
	saved := numCPU
	numCPU = func() int { return 4 }
	t.Cleanup(func() { numCPU = saved })
	fakeUsers(t)
	t.Setenv("HFORK_TEST_GREETING", "hello from the environment")
	t.Setenv("HFORK_TEST_UNSET", "") // restored after the test
	os.Unsetenv("HFORK_TEST_UNSET")
}
