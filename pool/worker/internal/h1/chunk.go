package h1

// ChunkScanner follows a chunked body to its end without decoding it.
type ChunkScanner struct {
	state  int   // chSize, chExt, chSizeLF, chData, chDataCR, chDataLF, chTrailer...
	size   int64 // of the current chunk; data left in chData
	line   int   // length of the current trailer line
	digits int
}

const (
	chSize = iota
	chExt
	chSizeLF
	chData
	chDataCR
	chDataLF
	chTrailerStart
	chTrailerLine
	chTrailerLF
	chEndLF
)

// Scan consumes b up to the body's end. It returns how many bytes belong
// to the body, the payload bytes among them, and whether the body ended.
func (s *ChunkScanner) Scan(b []byte) (n int, payload int64, end bool, err error) {
	for n < len(b) {
		c := b[n]
		switch s.state {
		case chSize:
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
				if s.digits == 15 {
					return n, payload, false, Error("chunk size too large")
				}
				s.size = s.size<<4 | int64(unhex(c))
				s.digits++
			case c == ';' || c == ' ' || c == '\t':
				if s.digits == 0 {
					return n, payload, false, Error("malformed chunk size")
				}
				s.state = chExt
			case c == '\r':
				if s.digits == 0 {
					return n, payload, false, Error("malformed chunk size")
				}
				s.state = chSizeLF
			default:
				return n, payload, false, Error("malformed chunk size")
			}
			n++
		case chExt:
			if c == '\r' {
				s.state = chSizeLF
			}
			n++
		case chSizeLF:
			if c != '\n' {
				return n, payload, false, Error("malformed chunk size line")
			}
			n++
			s.digits = 0
			if s.size == 0 {
				s.state = chTrailerStart
			} else {
				s.state = chData
			}
		case chData:
			k := int64(len(b) - n)
			if k > s.size {
				k = s.size
			}
			n += int(k)
			payload += k
			s.size -= k
			if s.size == 0 {
				s.state = chDataCR
			}
		case chDataCR:
			if c != '\r' {
				return n, payload, false, Error("malformed chunk end")
			}
			s.state = chDataLF
			n++
		case chDataLF:
			if c != '\n' {
				return n, payload, false, Error("malformed chunk end")
			}
			s.state = chSize
			n++
		case chTrailerStart:
			if c == '\r' {
				s.state = chEndLF
			} else {
				s.state = chTrailerLine
			}
			n++
		case chTrailerLine:
			if c == '\r' {
				s.state = chTrailerLF
			}
			n++
		case chTrailerLF:
			if c != '\n' {
				return n, payload, false, Error("malformed trailer")
			}
			s.state = chTrailerStart
			n++
		case chEndLF:
			if c != '\n' {
				return n, payload, false, Error("malformed chunked end")
			}
			return n + 1, payload, true, nil
		}
	}
	return n, payload, false, nil
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
