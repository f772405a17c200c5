package evloop

import "math/bits"

// A connection's answer bytes are built in the loop's one buffer (wbuf)
// and written from it; only what the socket does not take at once, and a
// proxied answer on its way, need a buffer of the connection's own
// (conn.out). Those come from here and come back once written, so a
// thousand connections hold a thousand buffers only while a thousand
// answers wait for their clients, not for as long as they stay open.

const (
	outMinShift = 11 // the smallest buffer: 2 KiB
	outClasses  = 6  // 2, 4, 8, 16, 32 and 64 KiB
	// outKeep bounds the free buffers of each size: at most 1 MiB
	// in all, for the buffers that several answers waiting at once used.
	outKeep = 8
)

// outPool holds free answer buffers by size class.
type outPool struct {
	free [outClasses][][]byte
}

// outClass is the class of the smallest buffer holding n bytes, or -1 if
// none does.
func outClass(n int) int {
	if n <= 1<<outMinShift {
		return 0
	}
	k := bits.Len(uint(n-1)) - outMinShift
	if k >= outClasses {
		return -1
	}
	return k
}

// get returns an empty buffer that holds n bytes.
func (p *outPool) get(n int) []byte {
	k := outClass(n)
	if k < 0 {
		return make([]byte, 0, n)
	}
	if f := p.free[k]; len(f) > 0 {
		b := f[len(f)-1]
		f[len(f)-1] = nil
		p.free[k] = f[:len(f)-1]
		return b
	}
	return make([]byte, 0, 1<<(outMinShift+k))
}

// put keeps b for a later get if it is one of the pool's sizes and
// there is room; a buffer that append grew is left to the collector.
func (p *outPool) put(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return
	}
	k := outClass(c)
	if k < 0 || 1<<(outMinShift+k) != c || len(p.free[k]) >= outKeep {
		return
	}
	p.free[k] = append(p.free[k], b[:0])
}

// outRoom returns c.out with room for n more bytes, moving it to a
// larger pooled buffer if it has not.
func (l *Loop) outRoom(c *conn, n int) []byte {
	if cap(c.out)-len(c.out) >= n {
		return c.out
	}
	b := append(l.outs.get(len(c.out)+n), c.out...)
	l.outs.put(c.out)
	c.out = b
	return b
}

// releaseOut gives c's answer buffer back once all of it is written.
func (l *Loop) releaseOut(c *conn) {
	if len(c.out) == 0 && c.out != nil {
		l.outs.put(c.out)
		c.out = nil
	}
}

// writeOut writes out, answers built in the loop's buffer, and then what
// follows them (a file); only what the socket does not take is copied
// into a buffer of c's own. A TLS connection's answers are sealed from
// c.out (flushTLS), never written as they are.
func (l *Loop) writeOut(c *conn, out []byte) {
	if len(c.out) == 0 && c.tls == nil {
		n, st := write(c.fd, out, 0)
		switch st {
		case ioClosed:
			l.close(c)
			return
		case ioAgain:
			c.out = append(l.outRoom(c, len(out)-n), out[n:]...)
			l.waitWritable(c, n > 0)
			return
		}
		out = nil
	}
	c.out = append(l.outRoom(c, len(out)), out...)
	l.flush(c)
}
