package certset

import (
	"bytes"
	"testing"
	"time"
)

func TestTicketKeys(t *testing.T) {
	seed := NewTicketSeed()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k := TicketKeys(seed, now)
	if len(k) != 2+ticketsKept {
		t.Fatalf("%d keys", len(k))
	}
	// Siblings with the same seed agree; another seed does not.
	if again := TicketKeys(seed, now.Add(time.Hour)); !bytes.Equal(again[0][:], k[0][:]) {
		t.Error("the key changed within its period")
	}
	if other := TicketKeys(NewTicketSeed(), now); bytes.Equal(other[0][:], k[0][:]) {
		t.Error("two seeds gave the same key")
	}
	// The next period encrypts with what was the next key, and still opens
	// the tickets of this one.
	next := TicketKeys(seed, now.Add(TicketPeriod))
	if !bytes.Equal(next[0][:], k[1][:]) || !bytes.Equal(next[2][:], k[0][:]) {
		t.Error("the keys did not turn over by one period")
	}
	seen := map[[32]byte]bool{}
	for _, key := range k {
		if seen[key] {
			t.Fatal("a key repeats")
		}
		seen[key] = true
	}
}
