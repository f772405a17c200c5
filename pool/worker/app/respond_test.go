package app

import (
	"net/http/httptest"
	"testing"

	"github.com/hfork/hfork/hclconfig"
)

func TestRespond(t *testing.T) {
	h := mustNew(t, hclconfig.Route{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{
		Status:  201,
		Body:    "made\n",
		Headers: map[string]string{"x-thing": "1", "Cache-Control": "no-store"},
	}})
	rec := serve(h, "GET", "/anything")
	if rec.Code != 201 || rec.Body.String() != "made\n" {
		t.Fatalf("GET = %d %q, want 201 made", rec.Code, rec.Body.String())
	}
	for k, want := range map[string]string{
		"X-Thing":        "1",
		"Cache-Control":  "no-store",
		"Content-Type":   "text/plain; charset=utf-8",
		"Content-Length": "5",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	rec = serve(h, "HEAD", "/")
	if rec.Code != 201 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "5" {
		t.Errorf("HEAD = %d body %q length %q, want 201, no body, length 5",
			rec.Code, rec.Body.String(), rec.Header().Get("Content-Length"))
	}
}

func TestRespondKeepsContentType(t *testing.T) {
	h := mustNew(t, hclconfig.Route{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{
		Status: 200, Body: "{}", Headers: map[string]string{"content-type": "application/json"},
	}})
	if got := serve(h, "GET", "/").Header().Values("Content-Type"); len(got) != 1 || got[0] != "application/json" {
		t.Errorf("Content-Type = %q, want [application/json]", got)
	}
}

func TestRespondNoContent(t *testing.T) {
	h := mustNew(t, hclconfig.Route{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{
		Status: 204, Body: "ignored",
	}})
	rec := serve(h, "GET", "/")
	if rec.Code != 204 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "" {
		t.Errorf("204 = %d body %q length %q, want no body and no length",
			rec.Code, rec.Body.String(), rec.Header().Get("Content-Length"))
	}
}

func BenchmarkRespond(b *testing.B) {
	h := mustNew(b, hclconfig.Route{Prefix: "/", App: hclconfig.AppRespond, Respond: hclconfig.Respond{
		Status: 200, Body: "hello from hfork\n", Headers: map[string]string{"X-Served-By": "hfork"},
	}})
	req := httptest.NewRequest("GET", "/", nil)
	b.Run("writer=nop", func(b *testing.B) {
		w := newNopWriter()
		b.ReportAllocs()
		for b.Loop() {
			w.reset()
			h.ServeHTTP(w, req)
		}
	})
	b.Run("writer=httptest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
	b.Run("writer=httptest/bare", func(b *testing.B) {
		// What the recorder alone costs, to subtract from the line above.
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			rec.WriteHeader(200)
			rec.Write([]byte("x"))
		}
	})
}
