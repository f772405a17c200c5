package hclconfig

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// parseOK parses src and fails the test on any diagnostic.
func parseOK(t *testing.T, filename, src string) Config {
	t.Helper()
	c, files, diags := Parse(filename, []byte(src))
	if len(diags) > 0 {
		var b bytes.Buffer
		WriteDiagnostics(&b, files, diags, false)
		t.Fatalf("unexpected diagnostics:\n%s", b.String())
	}
	return c
}

// parseErrs parses src and returns its diagnostics, failing the test when
// there is no error or when a Config comes back anyway.
func parseErrs(t *testing.T, src string) hcl.Diagnostics {
	t.Helper()
	c, _, diags := Parse("server.hcl", []byte(src))
	if !diags.HasErrors() {
		t.Fatalf("no error for:\n%s", src)
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Errorf("Parse returned a Config along with errors: %#v", c)
	}
	return diags
}

const minimal = `
listener "web" {
  bind = ":8080"
  route "/" {
    respond { body = "hi" }
  }
}
`

func TestParseDefaults(t *testing.T) {
	c := parseOK(t, "server.hcl", minimal)
	want := Listener{
		Name:              "web",
		Bind:              []string{":8080"},
		Class:             ClassAsync,
		Workers:           runtime.NumCPU(),
		WorkerConnections: 1000,
		Timeout:           30e9,
		GracefulTimeout:   30e9,
		ShutdownTimeout:   300e9,
		BootTimeout:       30e9,
		Keepalive:         5e9,
		EventLoop:         true,
		MaxHeaderBytes:    1 << 20,
		MaxBodyBytes:      100 << 20,
		ReadHeaderTimeout: 10e9,
		WriteTimeout:      60e9,
		Routes:            []Route{{Prefix: "/", App: AppRespond, Respond: Respond{Status: 200, Body: "hi"}}},
	}
	if !reflect.DeepEqual(c.Listeners, []Listener{want}) {
		t.Errorf("listeners = %#v\nwant %#v", c.Listeners, []Listener{want})
	}
	if c.Log != (Log{Level: "info", Format: "auto"}) {
		t.Errorf("log = %#v", c.Log)
	}
	if c.Reload != (Reload{Watch: true, Debounce: 250e6, MaxDrainingGenerations: 3}) {
		t.Errorf("reload = %#v", c.Reload)
	}
	if c.Pidfile != "" || c.Listeners[0].AccessLog != (AccessLog{}) {
		t.Errorf("pidfile %q, access log %#v: want both off", c.Pidfile, c.Listeners[0].AccessLog)
	}
}

// TestParsePaths checks that relative paths follow the config file, not
// the working directory, and that File becomes absolute.
func TestParsePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	filename := filepath.Join(dir, "server.hcl")
	c := parseOK(t, filename, `
pidfile = "run/hfork.pid"
log { file = "/var/log/hfork.log" }
listener "web" {
  bind = ["unix:web.sock", ":8080"]
  access_log { file = "logs/access.log" }
  route "/" {
    static { root = "www" }
  }
}
listener "app" {
  bind    = ":8081"
  class   = "exec"
  command = ["./app"]
}
`)
	checks := map[string][2]string{
		"file":         {c.File, filename},
		"pidfile":      {c.Pidfile, filepath.Join(dir, "run/hfork.pid")},
		"log file":     {c.Log.File, "/var/log/hfork.log"},
		"unix bind":    {c.Listeners[0].Bind[0], "unix:" + filepath.Join(dir, "web.sock")},
		"access log":   {c.Listeners[0].AccessLog.File, filepath.Join(dir, "logs/access.log")},
		"static root":  {c.Listeners[0].Routes[0].Static.Root, filepath.Join(dir, "www")},
		"exec dir":     {c.Listeners[1].Dir, dir},
		"exec command": {c.Listeners[1].Command[0], "./app"}, // the program runs in dir
	}
	for name, got := range checks {
		if got[0] != got[1] {
			t.Errorf("%s = %q; want %q", name, got[0], got[1])
		}
	}

	// a relative filename still gives an absolute File
	c = parseOK(t, "server.hcl", minimal)
	if want, _ := filepath.Abs("server.hcl"); c.File != want {
		t.Errorf("File = %q; want %q", c.File, want)
	}
}

func TestDidYouMean(t *testing.T) {
	diags := parseErrs(t, `
listener "web" {
  bnd = ":8080"
  route "/" {
    respond { staus = 200 }
  }
}
`)
	// The misspelt bind is not reported missing as well: that would be a
	// follow-on of the same mistake.
	want := []struct {
		detail    string
		line, col int
	}{
		{`An argument named "bnd" is not expected here. Did you mean "bind"?`, 3, 3},
		{`An argument named "staus" is not expected here. Did you mean "status"?`, 5, 15},
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Detail)
	}
	if len(diags) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%s", len(diags), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		d := diags[i]
		if d.Detail != w.detail || d.Subject.Start.Line != w.line || d.Subject.Start.Column != w.col {
			t.Errorf("diagnostic %d = %q at %d:%d; want %q at %d:%d", i, d.Detail,
				d.Subject.Start.Line, d.Subject.Start.Column, w.detail, w.line, w.col)
		}
	}
}

func TestEnvFunc(t *testing.T) {
	t.Setenv("HFORK_TEST_SET", "from env")
	t.Setenv("HFORK_TEST_EMPTY", "")
	os.Unsetenv("HFORK_TEST_EMPTY")
	body := func(expr string) string {
		t.Helper()
		c := parseOK(t, "server.hcl", `listener "web" {
  bind = ":8080"
  route "/" {
    respond { body = `+expr+` }
  }
}`)
		return c.Listeners[0].Routes[0].Respond.Body
	}
	for expr, want := range map[string]string{
		`env("HFORK_TEST_SET")`:                             "from env",
		`env("HFORK_TEST_EMPTY")`:                           "",
		`coalesce(env("HFORK_TEST_EMPTY"), "default")`:      "default",
		`coalesce(env("HFORK_TEST_SET"), "default")`:        "from env",
		`upper(env("HFORK_TEST_SET"))`:                      "FROM ENV",
		`"${env("HFORK_TEST_SET")}!"`:                       "from env!",
		`format("%s:%d", env("HFORK_TEST_SET"), 8080)`:      "from env:8080",
		`tostring(tonumber("8080") + 1)`:                    "8081",
		`join("", [for s in split(",", "a,b") : upper(s)])`: "AB",
	} {
		if got := body(expr); got != want {
			t.Errorf("%s = %q; want %q", expr, got, want)
		}
	}

	for expr, summary := range map[string]string{
		`env(8080)`:           "Invalid function argument",
		`env(true)`:           "Invalid function argument",
		`env(["PATH"])`:       "Invalid function argument",
		`env()`:               "Not enough function arguments",
		`env("A", "B")`:       "Too many function arguments",
		`environment("HOME")`: "Call to unknown function",
	} {
		diags := parseErrs(t, `listener "web" {
  bind = ":8080"
  route "/" {
    respond { body = `+expr+` }
  }
}`)
		if len(diags) != 1 || diags[0].Summary != summary || diags[0].Subject.Start.Line != 4 {
			t.Errorf("%s: got %v; want one %q on line 4", expr, diags, summary)
		}
	}
}

// TestFingerprint: only Workers may change without changing the
// fingerprint, since a change in workers alone is a scale, not a replace.
func TestFingerprint(t *testing.T) {
	c := parseOK(t, "server.hcl", minimal)
	base, ok := c.Listener("web")
	if !ok {
		t.Fatal(`Listener("web") not found`)
	}
	if _, ok := c.Listener("nope"); ok {
		t.Error(`Listener("nope") found`)
	}
	fp := base.Fingerprint()

	scaled := base
	scaled.Workers = base.Workers + 7
	if got := scaled.Fingerprint(); got != fp {
		t.Errorf("changing Workers changed the fingerprint: %s -> %s", fp, got)
	}

	changes := map[string]func(l *Listener){
		"respond body": func(l *Listener) {
			l.Routes = []Route{{Prefix: "/", App: AppRespond, Respond: Respond{Status: 200, Body: "bye"}}}
		},
		"bind":         func(l *Listener) { l.Bind = []string{":8081"} },
		"name":         func(l *Listener) { l.Name = "api" },
		"class":        func(l *Listener) { l.Class = ClassSync },
		"threads":      func(l *Listener) { l.Threads = 3 },
		"timeout":      func(l *Listener) { l.Timeout++ },
		"keepalive":    func(l *Listener) { l.Keepalive = 0 },
		"max_requests": func(l *Listener) { l.MaxRequests = 10 },
		"access log":   func(l *Listener) { l.AccessLog = AccessLog{File: "-", Format: "json"} },
		"env":          func(l *Listener) { l.Env = map[string]string{"A": "b"} },
		"stop signal":  func(l *Listener) { l.StopSignal = "QUIT" },
	}
	for name, change := range changes {
		l := base
		change(&l)
		if l.Fingerprint() == fp {
			t.Errorf("changing %s kept the fingerprint", name)
		}
	}
	if base.Fingerprint() != fp {
		t.Error("a change leaked into the base listener")
	}
}

func TestWriteDiagnostics(t *testing.T) {
	_, files, diags := Parse("server.hcl", []byte(`listener "web" {
  bind = ":8080"
  timeout = "30"
  route "/" {
    respond {}
  }
}
`))
	var plain, color bytes.Buffer
	if err := WriteDiagnostics(&plain, files, diags, false); err != nil {
		t.Fatal(err)
	}
	want := `Error: Invalid duration

  on server.hcl:3:13, in listener "web":
   3:   timeout = "30"

"30" needs a unit, like "30s" for seconds or "30ms" for milliseconds.

`
	if plain.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", plain.String(), want)
	}
	if err := WriteDiagnostics(&color, files, diags, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(color.String(), "\x1b[31mError\x1b[0m") || !strings.Contains(color.String(), "on server.hcl:3:13") {
		t.Errorf("colored output lacks the colour or the location:\n%q", color.String())
	}
}

func TestQuoteHCL(t *testing.T) {
	for _, s := range []string{
		"", "plain", "line\nbreak\r\n", "tab\t", `quote " and \ backslash`,
		"${not} %{a} $$ %% ${", "é ü 日本", "\x01\x7f", "\U0001F600", "\u200b",
	} {
		src := quoteHCL(s)
		expr, diags := hclsyntax.ParseExpression([]byte(src), "q", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("quoteHCL(%q) = %s does not parse: %v", s, src, diags)
			continue
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || v.AsString() != s {
			t.Errorf("quoteHCL(%q) = %s reads back as %q (%v)", s, src, v.AsString(), diags)
		}
	}
}

// TestExamplesParse runs the -t check over every config a user may copy.
func TestExamplesParse(t *testing.T) {
	var found int
	for _, root := range []string{filepath.Join("..", "examples"), filepath.Join("..", "etc")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && path == root {
					return nil
				}
				return err
			}
			if d.IsDir() || filepath.Ext(path) != ".hcl" {
				return nil
			}
			found++
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			_, files, diags := Parse(path, src)
			if diags.HasErrors() {
				var b bytes.Buffer
				WriteDiagnostics(&b, files, diags, false)
				t.Errorf("%s:\n%s", path, b.String())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if found == 0 {
		t.Fatal("no *.hcl file under ../examples or ../etc")
	}
}
