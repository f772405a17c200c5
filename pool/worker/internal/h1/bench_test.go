package h1

import "testing"

// wrkHead is the request wrk sends.
const wrkHead = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

// browserHead is a request with the headers a browser sends.
const browserHead = "GET /static/a.txt?v=3 HTTP/1.1\r\nHost: example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
	"Referer: https://example.com/\r\nConnection: keep-alive\r\nCookie: session=0123456789abcdef\r\n\r\n"

func benchParse(b *testing.B, head string) {
	buf := []byte(head)
	var r Request
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, res := Parse(buf, &r); res != OK {
			b.Fatal(res)
		}
	}
}

// BenchmarkParse is the parser on wrk's request and on a browser's.
func BenchmarkParseWrk(b *testing.B)     { benchParse(b, wrkHead) }
func BenchmarkParseBrowser(b *testing.B) { benchParse(b, browserHead) }
