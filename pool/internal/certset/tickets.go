package certset

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// Session tickets let a client that comes back skip the full handshake.
// crypto/tls makes its own ticket keys per process, so a client that
// reconnects to a sibling worker (the kernel picks the worker) could not
// resume. The master hands every worker the same seed instead, and each
// derives the keys of a period from it and the clock: siblings agree
// without talking, and rotate at the same moments.
const (
	// TicketPeriod is how long one key encrypts new tickets.
	TicketPeriod = 24 * time.Hour
	// ticketsKept is how many earlier periods' keys still open tickets:
	// a week, crypto/tls's longest ticket lifetime.
	ticketsKept = 7
)

// SeedSize is the length of a ticket seed.
const SeedSize = 32

// NewTicketSeed is a fresh random seed.
func NewTicketSeed() []byte {
	b := make([]byte, SeedSize)
	rand.Read(b) // never fails (crypto/rand's contract)
	return b
}

// TicketKeys are the session ticket keys at now: the period's key first
// (it encrypts), then the next period's (a sibling whose clock turned a
// moment earlier issues tickets with it), then the earlier ones.
func TicketKeys(seed []byte, now time.Time) [][32]byte {
	p := now.UnixNano() / int64(TicketPeriod)
	keys := [][32]byte{ticketKey(seed, p), ticketKey(seed, p+1)}
	for i := int64(1); i <= ticketsKept; i++ {
		keys = append(keys, ticketKey(seed, p-i))
	}
	return keys
}

func ticketKey(seed []byte, period int64) [32]byte {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte("hfork session ticket key"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(period))
	m.Write(b[:])
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// InstallTickets gives c the ticket keys of seed and turns them over at
// each period's end, when a handshake finds it passed. c must not have a
// GetConfigForClient of its own; a nil or short seed leaves c as it is
// (crypto/tls's own keys, per process).
func InstallTickets(c *tls.Config, seed []byte) {
	if len(seed) < SeedSize {
		return
	}
	var next atomic.Int64
	set := func(now time.Time) {
		c.SetSessionTicketKeys(TicketKeys(seed, now))
		next.Store((now.UnixNano()/int64(TicketPeriod) + 1) * int64(TicketPeriod))
	}
	set(time.Now())
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if now := time.Now(); now.UnixNano() >= next.Load() {
			set(now)
		}
		return nil, nil // c itself
	}
}
