package evloop

import "testing"

func TestUpStateString(t *testing.T) {
	seen := map[string]bool{}
	for s := upConnecting; s <= upClosed; s++ {
		name := s.String()
		if seen[name] || name == "upState(?)" {
			t.Errorf("state %d: name %q", int(s), name)
		}
		seen[name] = true
	}
	for f := frameNone; f <= frameClose; f++ {
		if name := f.String(); name == "" || name == "frame(?)" {
			t.Errorf("frame %d: name %q", int(f), name)
		}
	}
}
