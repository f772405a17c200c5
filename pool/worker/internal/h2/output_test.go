package h2

import "testing"

// TestOutputOnlyWhileThereIsSome: a connection holds an output buffer
// only between the bytes it makes and TakeOutput; a partial frame's
// buffer goes at Trim once the frame is whole.
func TestOutputOnlyWhileThereIsSome(t *testing.T) {
	p := newPeer(t, Config{})
	p.start()
	if n := p.c.Held(); n != 0 {
		t.Fatalf("after the greeting was taken: %d bytes held", n)
	}
	if out := p.c.TakeOutput(); out != nil {
		t.Fatalf("nothing to write, but TakeOutput gave %d bytes", len(out))
	}
	p.headers(1, true, getRoot...)
	s := p.one(EvRequest).Stream
	p.c.WriteHeaders(s, 200, nil, false)
	if _, err := p.c.WriteData(s, make([]byte, 1000), true); err != nil {
		t.Fatal(err)
	}
	if n := p.c.Held(); n < OutputSize {
		t.Fatalf("with an answer to write: %d bytes held, want a pooled buffer of %d", n, OutputSize)
	}
	out := p.c.TakeOutput()
	if len(out) == 0 || p.c.Held() != 0 {
		t.Fatalf("TakeOutput gave %d bytes and left %d held", len(out), p.c.Held())
	}
	PutOutput(out)

	// Half a PING frame waits for the rest in the connection.
	p.fr.WritePing(false, [8]byte{1})
	ping := append([]byte(nil), p.buf.Bytes()...)
	p.buf.Reset()
	if _, err := p.c.Feed(ping[:10]); err != nil {
		t.Fatal(err)
	}
	p.c.Trim()
	if p.c.Held() == 0 {
		t.Fatal("Trim let go of a partial frame")
	}
	if _, err := p.c.Feed(ping[10:]); err != nil {
		t.Fatal(err)
	}
	if gs := p.out(); len(gs) != 1 || !gs[0].flags.Has(0x1) {
		t.Fatalf("after the whole PING: %+v, want its ACK", gs)
	}
	p.c.Trim()
	if n := p.c.Held(); n != 0 {
		t.Fatalf("quiet after Trim: %d bytes held", n)
	}
}
