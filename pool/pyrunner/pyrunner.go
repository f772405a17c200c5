package pyrunner

import (
	"bytes"
	"embed"
)

//go:embed py/*.py
var files embed.FS

// parts are the runner's files in the order they join: each defines what
// the next ones use, and main.py runs it.
var parts = []string{"core.py", "http1.py", "wsgi_classes.py", "async_classes.py", "main.py"}

var source = func() []byte {
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
}()

// Source is the whole runner as one Python program.
func Source() []byte { return source }
