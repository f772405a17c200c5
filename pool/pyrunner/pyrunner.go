package pyrunner

import (
	"bytes"
	"embed"
	"encoding/base64"
)

//go:embed py/*.py
var files embed.FS

// parts are the runner's files in the order they join: each defines what
// the next ones use, and main.py runs it.
var parts = []string{"core.py", "http1.py", "wsgi_classes.py", "async_classes.py", "main.py"}

// source is what the interpreter reads from the pipe: a few lines that
// compile the runner under a name of its own, with its lines in linecache,
// so tracebacks read "hfork-runner.py", line N, and show the line.
var source = func() []byte {
	prog := program()
	var b bytes.Buffer
	b.WriteString("# hfork's Python runner: see package pyrunner.\n")
	b.WriteString("import base64 as _b, linecache as _l\n")
	b.WriteString("_src = _b.b64decode(\"" + base64.StdEncoding.EncodeToString(prog) + "\").decode()\n")
	b.WriteString("_l.cache[\"hfork-runner.py\"] = (len(_src), None, _src.splitlines(True), \"hfork-runner.py\")\n")
	b.WriteString("del _b, _l\n")
	b.WriteString("exec(compile(_src, \"hfork-runner.py\", \"exec\"))\n")
	return b.Bytes()
}()

// program joins the runner's files into one Python program.
func program() []byte {
	var b bytes.Buffer
	for _, name := range parts {
		src, err := files.ReadFile("py/" + name)
		if err != nil {
			panic("pyrunner: " + err.Error()) // embedded at build time: cannot be missing
		}
		b.WriteString("# ---- " + name + " ----\n")
		b.Write(src)
		b.WriteString("\n")
	}
	return b.Bytes()
}

// Source is the whole runner as one Python program.
func Source() []byte { return source }
