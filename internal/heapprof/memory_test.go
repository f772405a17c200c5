package heapprof

import (
	"runtime/metrics"
	"testing"
)

func TestMemoryNamesEveryClass(t *testing.T) {
	kv := Memory()
	if len(kv) != 2*len(classes) {
		t.Fatalf("%d values, want a key and a value for each of %d classes", len(kv), len(classes))
	}
	got := map[string]uint64{}
	for i := 0; i < len(kv); i += 2 {
		got[kv[i].(string)] = kv[i+1].(uint64)
	}
	// Every class is one the runtime knows: an unknown name reads as 0,
	// and a running test has live objects, stacks and a total.
	for _, k := range []string{"heap_objects_kib", "stacks_kib", "total_kib"} {
		if got[k] == 0 {
			t.Errorf("%s = 0", k)
		}
	}
	if got["total_kib"] < got["heap_objects_kib"]+got["stacks_kib"] {
		t.Errorf("total %d KiB < objects %d + stacks %d", got["total_kib"], got["heap_objects_kib"], got["stacks_kib"])
	}
	known := map[string]bool{}
	for _, d := range metrics.All() {
		known[d.Name] = true
	}
	for _, c := range classes {
		if !known[c.name] {
			t.Errorf("%s: not a runtime metric", c.name)
		}
	}
}
