package app

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestScopeKeepsReaderFrom(t *testing.T) {
	// A route with a header policy and a compress block still hands the
	// file itself to ReadFrom when the answer is not compressed, so it
	// goes out by sendfile.
	root, data := staticTree(t)
	r := staticRoute(root)
	r.Headers = hclconfig.Headers{Set: map[string]string{"Cache-Control": "max-age=60"}}
	r.Compress = hclconfig.Compress{Encodings: []string{"gzip"}, Types: []string{"text/*"}, MinSize: 1}
	spy := &readFromSpy{ResponseRecorder: httptest.NewRecorder()}
	mustNew(t, r).ServeHTTP(spy, httptest.NewRequest("GET", "/static/data.bin", nil))
	if !bytes.Equal(spy.Body.Bytes(), data) || spy.Header().Get("Cache-Control") != "max-age=60" {
		t.Fatalf("body: %d bytes, want %d; header %v", spy.Body.Len(), len(data), spy.Header())
	}
	src := spy.src
	if lr, ok := src.(*io.LimitedReader); ok {
		src = lr.R
	}
	if _, ok := src.(*os.File); !ok {
		t.Errorf("ReadFrom got %T, want the *os.File for sendfile", spy.src)
	}
}

func TestScopeNone(t *testing.T) {
	// Levels that do nothing make no scope, so the route's answers go
	// through no writer at all.
	sc, err := newScope(nil, []level{{}, {compress: hclconfig.Compress{Off: true}}})
	if err != nil || sc != nil {
		t.Errorf("newScope of empty levels = %v, %v; want nil", sc, err)
	}
	var w http.ResponseWriter = httptest.NewRecorder()
	sc.serve(http.HandlerFunc(func(got http.ResponseWriter, _ *http.Request) {
		if got != w {
			t.Errorf("a nil scope wrapped the writer in %T", got)
		}
	}), w, httptest.NewRequest("GET", "/", nil))
}
