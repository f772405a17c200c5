package app

import (
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

// maxErrorPage bounds an error page, which every worker keeps in memory;
// hfork -t refuses a larger one.
const maxErrorPage = 1 << 20

// errorPage is an error_pages file, read once when the worker starts: it
// replaces hfork's own short answer for its status (a 404 of a missing
// file, a 502 of a dead upstream), never an answer an app or an upstream
// chose to give.
type errorPage struct {
	body     []byte
	ctype    []string
	length   []string
	fastHead []byte
}

func loadErrorPage(code int, file string) (*errorPage, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("error page for %d: %w", code, err)
	}
	if len(body) > maxErrorPage {
		return nil, fmt.Errorf("error page for %d: %s is larger than 1MiB", code, file)
	}
	ctype := mime.TypeByExtension(filepath.Ext(file))
	if ctype == "" {
		ctype = http.DetectContentType(body)
	}
	pg := &errorPage{body: body, ctype: []string{ctype}, length: []string{strconv.Itoa(len(body))}}
	b := appendStatusLine(nil, code)
	b = append(b, "Content-Length: "+pg.length[0]+"\r\n"...)
	b = append(b, "Content-Type: "+ctype+"\r\n"...)
	b = append(b, "X-Content-Type-Options: nosniff\r\n"...)
	pg.fastHead = b
	return pg, nil
}

// write answers code with the page, as writeStatus answers without one.
func (pg *errorPage) write(w http.ResponseWriter, code int) {
	h := w.Header()
	h["Content-Type"] = pg.ctype
	h["Content-Length"] = pg.length
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(code)
	w.Write(pg.body)
}
