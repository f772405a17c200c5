package heapprof

import "runtime/metrics"

// classes are the runtime's memory classes (runtime/metrics) a profile's
// log line reports, by the key it reports them under: with the heap
// profile, which sees only live objects, they say where the rest of a
// process's anonymous memory is (freed heap not yet given back, stacks,
// the runtime's own metadata).
var classes = []struct{ key, name string }{
	{"heap_objects_kib", "/memory/classes/heap/objects:bytes"},
	{"heap_unused_kib", "/memory/classes/heap/unused:bytes"},
	{"heap_free_kib", "/memory/classes/heap/free:bytes"},
	{"heap_released_kib", "/memory/classes/heap/released:bytes"},
	{"stacks_kib", "/memory/classes/heap/stacks:bytes"},
	{"os_stacks_kib", "/memory/classes/os-stacks:bytes"},
	{"metadata_kib", "/memory/classes/metadata/other:bytes"},
	{"mspan_kib", "/memory/classes/metadata/mspan/inuse:bytes"},
	{"profiling_kib", "/memory/classes/profiling/buckets:bytes"},
	{"other_kib", "/memory/classes/other:bytes"},
	{"total_kib", "/memory/classes/total:bytes"},
}

// Memory returns the runtime's memory classes as slog key/value pairs,
// in KiB.
func Memory() []any {
	s := make([]metrics.Sample, len(classes))
	for i, c := range classes {
		s[i].Name = c.name
	}
	metrics.Read(s)
	out := make([]any, 0, 2*len(s))
	for i, c := range classes {
		var v uint64
		if s[i].Value.Kind() == metrics.KindUint64 {
			v = s[i].Value.Uint64() >> 10
		}
		out = append(out, c.key, v)
	}
	return out
}
