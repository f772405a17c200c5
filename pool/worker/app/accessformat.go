package app

import (
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// timeCache holds the formatted times of one second; formatting a time
// costs more than the rest of a line, and a second is the log's resolution.
type timeCache struct {
	sec int64
	clf []byte // 10/Oct/2000:13:55:36 -0700
	iso []byte // 2000-10-10T13:55:36-07:00
}

func (a *AccessLog) timesFor(t time.Time) *timeCache {
	sec := t.Unix()
	if c := a.times.Load(); c != nil && c.sec == sec {
		return c
	}
	c := &timeCache{
		sec: sec,
		clf: t.AppendFormat(nil, "02/Jan/2006:15:04:05 -0700"),
		iso: t.AppendFormat(nil, time.RFC3339),
	}
	a.times.Store(c)
	return c
}

// Entry is one request as the access log records it. The strings may
// point into a buffer the caller reuses: Log formats them before it
// returns and keeps none.
type Entry struct {
	Remote     string // "ip:port", or "" for a unix socket peer
	Method     string
	RequestURI string // the target as the client sent it
	Path       string // decoded
	RawQuery   string
	Proto      string
	Host       string
	Referer    string
	UserAgent  string
	Status     int
	Bytes      int64 // body bytes sent: 0 for HEAD
	RequestID  string
	Start, End time.Time
}

// appendCombined formats the Apache/nginx combined format:
//
//	$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// Client-supplied text is escaped as nginx does (\xHH for quotes,
// backslashes and non-printable bytes), so no request can forge a line.
func (a *AccessLog) appendCombined(b []byte, e *Entry) []byte {
	b = appendRemote(b, e.Remote)
	b = append(b, " - - ["...)
	b = append(b, a.timesFor(e.End).clf...)
	b = append(b, `] "`...)
	b = appendEscaped(b, e.Method)
	b = append(b, ' ')
	b = appendEscaped(b, e.RequestURI)
	b = append(b, ' ')
	b = appendEscaped(b, e.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, ` "`...)
	b = appendEscapedOrDash(b, e.Referer)
	b = append(b, `" "`...)
	b = appendEscapedOrDash(b, e.UserAgent)
	b = append(b, "\"\n"...)
	return b
}

// appendJSON formats one JSON object per line with stable keys.
func (a *AccessLog) appendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = append(b, a.timesFor(e.End).iso...)
	b = append(b, `","remote":`...)
	if ip, ok := clientIP(e.Remote); ok {
		b = appendJSONString(b, ip)
	} else {
		b = appendJSONString(b, e.Remote)
	}
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"query":`...)
	b = appendJSONString(b, e.RawQuery)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, e.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.End.Sub(e.Start).Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"referer":`...)
	b = appendJSONString(b, e.Referer)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, e.UserAgent)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.Host)
	if e.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, e.RequestID)
	}
	b = append(b, "}\n"...)
	return b
}

// appendRemote writes the client address without its port, like nginx's
// $remote_addr; a unix socket peer has none and shows as "-".
func appendRemote(b []byte, remote string) []byte {
	if ip, ok := clientIP(remote); ok {
		return appendEscaped(b, ip)
	}
	return append(b, '-')
}

// requestURI is the target as the client sent it; handlers called outside
// a server (tests) may leave RequestURI empty.
func requestURI(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// firstHeader reads a canonical header key without Header.Get's
// canonicalization work.
func firstHeader(r *http.Request, key string) string {
	if v := r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

const hexDigits = "0123456789ABCDEF"

func appendEscapedOrDash(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s)
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD
// so every line stays valid JSON.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
