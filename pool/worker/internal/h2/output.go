package h2

import "sync"

// A connection holds an output buffer only while it has bytes to write:
// a thousand connections that wait for their next request hold none,
// and the buffers go round in a pool between the ones that answer.

// OutputSize is an output buffer's capacity: a full TLS record of
// frames, and the answers that follow it until the driver writes.
const OutputSize = 32 << 10

// maxPooled is the largest buffer the pool takes back: one an answer
// grew far past OutputSize is left to the collector.
const maxPooled = 2 * OutputSize

var outPool = sync.Pool{New: func() any {
	b := make([]byte, 0, OutputSize)
	return &b
}}

// buf is the output, taken from the pool if the connection has none.
func (c *Conn) buf() []byte {
	if c.out == nil {
		c.out = *outPool.Get().(*[]byte)
	}
	return c.out
}

// TakeOutput returns the bytes to write, or nil when there are none;
// the next output goes into a buffer of its own. Once the bytes are
// written, PutOutput gives the buffer back.
func (c *Conn) TakeOutput() []byte {
	out := c.out
	c.out = nil
	if len(out) == 0 {
		PutOutput(out)
		return nil
	}
	return out
}

// PutOutput gives back a buffer TakeOutput returned, once written.
func PutOutput(b []byte) {
	if cap(b) < OutputSize || cap(b) > maxPooled {
		return
	}
	b = b[:0]
	outPool.Put(&b)
}

// Trim lets go of the buffers a quiet connection holds: the output when
// it is empty, and the partial frame's when no frame is partial. The
// driver calls it when the connection waits for the client.
func (c *Conn) Trim() {
	if len(c.out) == 0 && c.out != nil {
		PutOutput(c.out)
		c.out = nil
	}
	if len(c.in) == 0 {
		c.in = nil
	}
}

// Held is how many bytes of buffer the connection holds for its output
// and a partial frame.
func (c *Conn) Held() int { return cap(c.out) + cap(c.in) }
