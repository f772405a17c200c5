package hclconfig

import (
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// numCPU is the default worker count; a variable so tests print stable output.
var numCPU = runtime.NumCPU

var fileSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "pidfile"}, {Name: "user"}, {Name: "group"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "log"},
		{Type: "reload"},
		{Type: "metrics"},
		{Type: "listener", LabelNames: []string{"name"}},
	},
}

var logSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "level"}, {Name: "format"}, {Name: "file"}},
}

var metricsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "bind", Required: true}},
}

var reloadSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "watch"}, {Name: "debounce"}, {Name: "max_draining_generations"}},
}

// decoder collects every diagnostic of one parse, so an operator fixes a
// file in one round instead of one error per run.
type decoder struct {
	dir   string // the config file's directory, absolute
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
	// user and group are the top-level ones, each listener's default.
	user, group string
}

// Parse parses and validates one config file. It returns the Config only
// when there is no error diagnostic (warnings may come with it), and the
// parsed files for WriteDiagnostics. Relative paths in the file resolve
// against the file's directory; filename itself may be relative, and is
// kept as given in diagnostics.
func Parse(filename string, src []byte) (Config, map[string]*hcl.File, hcl.Diagnostics) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return Config{}, p.Files(), trimSyntaxFollowOns(diags, src)
	}
	abs, err := filepath.Abs(filename)
	if err != nil {
		return Config{}, p.Files(), append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot resolve the config file's path",
			Detail:   err.Error(),
		})
	}
	d := &decoder{dir: filepath.Dir(abs), ctx: evalContext(), diags: diags}
	c := d.file(f.Body)
	c.File = abs
	sortDiagnostics(d.diags)
	if d.diags.HasErrors() {
		return Config{}, p.Files(), d.diags
	}
	return c, p.Files(), d.diags
}

func (d *decoder) file(body hcl.Body) Config {
	c := Config{
		Log:    Log{Level: "info", Format: "auto"},
		Reload: Reload{Watch: true, Debounce: 250 * time.Millisecond, MaxDrainingGenerations: defaultMaxDrainingGenerations},
	}
	content, diags := body.Content(fileSchema)
	d.diags = append(d.diags, diags...)

	if d.str(content.Attributes, "pidfile", &c.Pidfile) && c.Pidfile != "" {
		c.Pidfile = d.path(c.Pidfile)
	}
	d.identity(content.Attributes, "user", "user", &c.User)
	d.identity(content.Attributes, "group", "group", &c.Group)
	d.user, d.group = c.User, c.Group

	var seen = map[string]hcl.Range{}
	var listenerAt = map[string]hcl.Range{}
	var binds []boundAddr
	for _, b := range content.Blocks {
		switch b.Type {
		case "log", "reload", "metrics":
			if prev, dup := seen[b.Type]; dup {
				d.errorf(b.DefRange, "Duplicate "+b.Type+" block", "A %s block is already declared at %s; there can be only one.", b.Type, at(prev))
				continue
			}
			seen[b.Type] = b.DefRange
			switch b.Type {
			case "log":
				c.Log = d.log(b.Body, c.Log)
			case "reload":
				c.Reload = d.reload(b.Body, c.Reload)
			case "metrics":
				var ba *boundAddr
				c.Metrics, ba = d.metrics(b.Body)
				if ba != nil {
					binds = append(binds, *ba)
				}
			}
		case "listener":
			l, lb := d.listener(b)
			if prev, dup := listenerAt[l.Name]; dup {
				d.errorf(b.LabelRanges[0], "Duplicate listener "+quote(l.Name), "Already declared at %s; listener names must be unique.", at(prev))
				continue
			}
			listenerAt[l.Name] = b.DefRange
			binds = append(binds, lb...)
			c.Listeners = append(c.Listeners, l)
		}
	}
	d.checkBinds(binds)
	if len(listenerAt) == 0 && !d.diags.HasErrors() {
		d.errorf(body.MissingItemRange(), "No listener", `The file declares no listener block, so hfork would serve nothing. Add one, like listener "web" { bind = ":8080" ... }.`)
	}
	return c
}

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"auto", "text", "json"}
)

func (d *decoder) log(body hcl.Body, l Log) Log {
	content, _ := d.content(body, logSchema)
	d.enum(content.Attributes, "level", logLevels, &l.Level)
	d.enum(content.Attributes, "format", logFormats, &l.Format)
	if d.str(content.Attributes, "file", &l.File) {
		switch l.File {
		case "", "-":
			l.File = "" // stderr, the default
		default:
			l.File = d.path(l.File)
		}
	}
	return l
}

func (d *decoder) reload(body hcl.Body, r Reload) Reload {
	content, _ := d.content(body, reloadSchema)
	d.boolean(content.Attributes, "watch", &r.Watch)
	d.duration(content.Attributes, "debounce", &r.Debounce)
	if d.integer(content.Attributes, "max_draining_generations", &r.MaxDrainingGenerations) && r.MaxDrainingGenerations < 1 {
		d.errorf(content.Attributes["max_draining_generations"].Expr.Range(), "Invalid max_draining_generations", "max_draining_generations is %d; a reload that replaces a listener's workers drains the old ones, so it must be at least 1.", r.MaxDrainingGenerations)
	}
	return r
}

// metrics decodes the metrics block; its address takes part in the
// overlap checks of every bind.
func (d *decoder) metrics(body hcl.Body) (Metrics, *boundAddr) {
	content, diags := body.Content(metricsSchema)
	d.diags = append(d.diags, diags...)
	var m Metrics
	attr := content.Attributes["bind"]
	if !d.str(content.Attributes, "bind", &m.Bind) {
		return Metrics{}, nil
	}
	ba, err := parseBind(m.Bind, d.dir)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid metrics bind", "%s", err.Error())
		return Metrics{}, nil
	}
	m.Bind = ba.addr
	return m, &boundAddr{bindAddr: ba, listener: "", rng: attr.Expr.Range()}
}

// path makes p absolute against the config file's directory, so the
// master and its workers agree on it whatever their working directory.
func (d *decoder) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

// enum sets *dst from attrs[name] when it is one of valid.
func (d *decoder) enum(attrs hcl.Attributes, name string, valid []string, dst *string) bool {
	var s string
	if !d.str(attrs, name, &s) {
		return false
	}
	for _, v := range valid {
		if s == v {
			*dst = s
			return true
		}
	}
	d.errorf(attrs[name].Expr.Range(), "Invalid "+name, "%q is not a valid value for %s; use %s.", s, name, orList(valid))
	return false
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
