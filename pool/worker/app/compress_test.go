package app

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hfork/hfork/hclconfig"
	"github.com/klauspost/compress/zstd"
)

func TestNegotiate(t *testing.T) {
	both := []string{encZstd, encGzip}
	for _, tc := range []struct {
		ae         string
		encs       []string
		want       string
		identityOK bool
	}{
		{"", both, "", true},
		{"gzip", both, "gzip", true},
		{"gzip, zstd", both, "zstd", true},           // a tie goes to the server's order
		{"gzip;q=1, zstd;q=0.5", both, "gzip", true}, // the client's q first
		{"zstd;q=0, gzip", both, "gzip", true},
		{"GZIP;Q=0.8", both, "gzip", true},
		{"x-gzip", both, "gzip", true},
		{"br", both, "", true},
		{"*", both, "zstd", true},
		{"*;q=0.3, zstd;q=0", both, "gzip", true},
		{"identity;q=0", both, "", false},
		{"gzip, identity;q=0", both, "gzip", false},
		{"*;q=0", both, "", false},
		{"*;q=0, identity", both, "", true},
		{"gzip;q=nonsense", both, "", true},
		{" gzip ; q=0.5 ,, zstd;q=0.4 ", both, "gzip", true},
		{"zstd", []string{encGzip}, "", true},
		{"gzip, zstd", []string{encGzip, encZstd}, "gzip", true},
	} {
		enc, ok := negotiate(tc.ae, tc.encs)
		if enc != tc.want || ok != tc.identityOK {
			t.Errorf("negotiate(%q, %v) = %q, %v; want %q, %v", tc.ae, tc.encs, enc, ok, tc.want, tc.identityOK)
		}
	}
}

func decode(t *testing.T, enc string, b []byte) string {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	case "":
		return string(b)
	default:
		t.Fatalf("unknown coding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return string(out)
}

// compressSite has a route of each kind under one compress block.
func compressSite(t *testing.T) (http.Handler, string, string) {
	root := t.TempDir()
	text := strings.Repeat("hfork compresses text; ", 400) // about 9 KiB
	os.WriteFile(filepath.Join(root, "big.txt"), []byte(text), 0o644)
	os.WriteFile(filepath.Join(root, "small.txt"), []byte("tiny"), 0o644)
	os.WriteFile(filepath.Join(root, "pic.png"), []byte(text), 0o644)
	os.WriteFile(filepath.Join(root, "pre.css"), []byte("identity css"), 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("precompressed css"))
	zw.Close()
	os.WriteFile(filepath.Join(root, "pre.css.gz"), gz.Bytes(), 0o644)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/encoded":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "br")
			w.Write([]byte("already brotli, honest"))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Etag", `"v1"`)
			io.WriteString(w, text)
		}
	}))
	t.Cleanup(up.Close)
	comp := hclconfig.Compress{Encodings: []string{"zstd", "gzip"}, Types: []string{"text/*", "application/json"}, MinSize: 1024, Level: 1}
	static := staticRoute(root)
	static.Static.Precompressed = true
	l := hclconfig.Listener{Name: "web", Compress: comp, Routes: []hclconfig.Route{
		static,
		{Prefix: "/api/", App: hclconfig.AppProxy, Proxy: hclconfig.Proxy{Upstream: []string{up.URL}}},
		respondRoute("/hello", text),
		respondRoute("/short", "short"),
		{Prefix: "/plain/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{Status: 200, Body: text}, Compress: hclconfig.Compress{Off: true}},
	}}
	h, err := New(l, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return h, text, "precompressed css"
}

func TestCompressNegotiation(t *testing.T) {
	h, text, _ := compressSite(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		path, ae, rng string
		code          int
		enc           string // Content-Encoding
		vary          bool
		body          string // decoded
	}{
		{"/hello", "gzip", "", 200, "gzip", true, text},
		{"/hello", "gzip;q=0.5, zstd", "", 200, "zstd", true, text},
		{"/hello", "zstd;q=0, gzip;q=0.1", "", 200, "gzip", true, text},
		{"/hello", "", "", 200, "", true, text},
		{"/hello", "br", "", 200, "", true, text},
		{"/hello", "identity;q=0", "", 406, "", false, "406 not acceptable\n"},
		{"/short", "gzip", "", 200, "", false, "short"},                  // below min_size
		{"/short", "gzip, identity;q=0", "", 200, "gzip", true, "short"}, // identity refused
		{"/plain/", "gzip", "", 200, "", false, text},                    // compress off at the route
		{"/static/big.txt", "gzip", "", 200, "gzip", true, text},
		{"/static/big.txt", "zstd", "", 200, "zstd", true, text},
		{"/static/big.txt", "zstd", "bytes=0-5", 206, "", true, text[:6]}, // Range: never compressed
		// below min_size, and not a compressed type; Vary all the same,
		// as the route looks for precompressed files
		{"/static/small.txt", "gzip", "", 200, "", true, "tiny"},
		{"/static/pic.png", "gzip", "", 200, "", true, text},
		{"/static/pre.css", "gzip", "", 200, "gzip", true, "precompressed css"},
		{"/static/pre.css", "zstd", "", 200, "", true, "identity css"}, // no pre.css.zst, too small
		{"/api/x", "zstd", "", 200, "zstd", true, text},
		{"/api/x", "gzip", "", 200, "gzip", true, text},
		{"/api/x", "", "", 200, "", true, text},
		{"/api/encoded", "gzip", "", 200, "br", false, "already brotli, honest"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.ae != "" {
			req.Header.Set("Accept-Encoding", tc.ae)
		}
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		// A Transport of its own: the default one would ask for gzip
		// itself and hide the coding.
		res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		enc := res.Header.Get("Content-Encoding")
		name := tc.path + " " + tc.ae + " " + tc.rng
		if res.StatusCode != tc.code || enc != tc.enc {
			t.Errorf("%s: %d %q, want %d %q", name, res.StatusCode, enc, tc.code, tc.enc)
			continue
		}
		if got := res.Header.Get("Vary") == "Accept-Encoding"; got != tc.vary {
			t.Errorf("%s: Vary %q, want it: %v", name, res.Header.Get("Vary"), tc.vary)
		}
		body := raw
		if enc != "br" {
			body = []byte(decode(t, enc, raw))
		}
		if string(body) != tc.body {
			t.Errorf("%s: body %.40q, want %.40q", name, body, tc.body)
		}
		if enc != "" && enc != "br" {
			if et := res.Header.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
				t.Errorf("%s: compressed answer with a strong Etag %s", name, et)
			}
			if res.Header.Get("Accept-Ranges") != "" && strings.HasPrefix(tc.path, "/api/") {
				t.Errorf("%s: a streamed compressed answer offers ranges", name)
			}
		}
		// The fast path answers the same, where it answers.
		if strings.HasPrefix(tc.path, "/api/") || tc.rng != "" {
			continue
		}
		var resp FastResponse
		resp.Reset()
		if !h.(FastServer).ServeFast(&FastRequest{Method: "GET", Path: tc.path, AcceptEncoding: tc.ae}, &resp) {
			t.Errorf("%s: the fast path declined", name)
			continue
		}
		fh := parseHead(t, resp.Head)
		fbody := resp.Body
		if resp.FileFD >= 0 {
			f := os.NewFile(uintptr(resp.FileFD), "")
			fbody, _ = io.ReadAll(io.LimitReader(f, resp.FileSize))
			f.Close()
		}
		if resp.Status != res.StatusCode || fh.Get("Content-Encoding") != enc || fh.Get("Vary") != res.Header.Get("Vary") ||
			fh.Get("Etag") != res.Header.Get("Etag") || !bytes.Equal(fbody, raw) {
			t.Errorf("%s: fast path %d %v, net/http %d %v", name, resp.Status, fh, res.StatusCode, res.Header)
		}
	}
}

func TestCompressCacheMadeOnce(t *testing.T) {
	h, text, _ := compressSite(t)
	serve := func() []byte {
		var resp FastResponse
		resp.Reset()
		if !h.(FastServer).ServeFast(&FastRequest{Method: "GET", Path: "/static/big.txt", AcceptEncoding: "gzip"}, &resp) {
			t.Fatal("declined")
		}
		return resp.Body
	}
	a, b := serve(), serve()
	if len(a) == 0 || &a[0] != &b[0] {
		t.Error("the second request compressed the file again")
	}
	if decode(t, "gzip", a) != text {
		t.Error("the cached body does not decompress to the file")
	}
}
