package gguf

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// FuzzParse feeds arbitrary bytes to Parse. Whatever the input, Parse must
// not panic and must either fail with ErrFormat or return a file whose
// every tensor lies inside the buffer and whose metadata and tensors,
// written again with Write, parse back to the same thing (and write to the
// same bytes again).
//
// The seed corpus is testdata/fuzz/FuzzParse plus the files added below;
// plain `go test` runs them all.
func FuzzParse(f *testing.F) {
	f.Add(smallValid(f))
	ws, _ := roundTripTensors()
	f.Add(writeBytes(f, allValuesKVs(), ws))
	f.Add(writeBytes(f, nil, nil))
	w, _ := dataTensor("x", tensor.Q4_0, []uint64{32, 2}, 3)
	f.Add(writeBytes(f, []KV{{"general.alignment", Value{TypeUint32, uint32(8)}}}, []WriterTensor{w}))
	// A version 2 file with tensors out of offset order and a gap.
	v2 := header(2, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(16).
		tinfo("late", []uint64{4}, uint32(tensor.F32), 32).
		tinfo("early", []uint64{2, 2}, uint32(tensor.F16), 0).pad(16).raw(pattern(48, 4)).b
	v2[4] = 2
	f.Add(v2)

	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %q does not wrap ErrFormat", err)
			}
			return
		}
		checkParsed(t, pf, data)

		out := rewrite(t, pf)
		g, err := Parse(out)
		if err != nil {
			t.Fatalf("the re-written file does not parse: %v", err)
		}
		checkParsed(t, g, out)
		if g.Alignment != pf.Alignment {
			t.Fatalf("alignment %d became %d", pf.Alignment, g.Alignment)
		}
		kvsEqual(t, g.KVs, pf.KVs)
		if len(g.Tensors) != len(pf.Tensors) {
			t.Fatalf("%d tensors became %d", len(pf.Tensors), len(g.Tensors))
		}
		for i := range pf.Tensors {
			a, b := &pf.Tensors[i], &g.Tensors[i]
			if a.Name != b.Name || a.Type != b.Type || a.Size != b.Size || !reflect.DeepEqual(a.Dims, b.Dims) {
				t.Fatalf("tensor %d: %+v became %+v", i, *a, *b)
			}
			if !bytes.Equal(pf.TensorData(a), g.TensorData(b)) {
				t.Fatalf("tensor %q: data changed", a.Name)
			}
		}
		if again := rewrite(t, g); !bytes.Equal(again, out) {
			t.Fatal("writing the re-parsed file gives different bytes")
		}
	})
}

// checkParsed checks the invariants of a successfully parsed file.
func checkParsed(t *testing.T, f *File, buf []byte) {
	t.Helper()
	n := uint64(len(buf))
	if f.Alignment == 0 || f.Alignment&(f.Alignment-1) != 0 || f.DataStart%f.Alignment != 0 {
		t.Fatalf("alignment %d, data start %d", f.Alignment, f.DataStart)
	}
	if len(f.Tensors) > 0 && f.DataStart > n {
		t.Fatalf("data section at %d in a file of %d bytes", f.DataStart, n)
	}
	for i := range f.KVs {
		if v, ok := f.Get(f.KVs[i].Key); !ok || v.Type != f.KVs[i].Value.Type {
			t.Fatalf("Get(%q) does not find KV %d", f.KVs[i].Key, i)
		}
	}
	type span struct{ lo, hi uint64 }
	var spans []span
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if got, ok := f.Tensor(ti.Name); !ok || got != ti {
			t.Fatalf("Tensor(%q) does not find tensor %d", ti.Name, i)
		}
		if len(ti.Dims) == 0 || len(ti.Dims) > 4 || !ti.Type.Known() || ti.Size == 0 {
			t.Fatalf("tensor %+v", *ti)
		}
		if ti.Offset%f.Alignment != 0 {
			t.Fatalf("tensor %q offset %d not aligned to %d", ti.Name, ti.Offset, f.Alignment)
		}
		lo := f.DataStart + ti.Offset
		if lo < f.DataStart || lo > n || ti.Size > n-lo {
			t.Fatalf("tensor %q (data start %d + offset %d, %d bytes) outside a buffer of %d", ti.Name, f.DataStart, ti.Offset, ti.Size, n)
		}
		if d := f.TensorData(ti); uint64(len(d)) != ti.Size || uint64(cap(d)) != ti.Size || (len(d) > 0 && &d[0] != &buf[lo]) {
			t.Fatalf("tensor %q: TensorData is not buf[%d:%d]", ti.Name, lo, lo+ti.Size)
		}
		if want := ti.Elements() / uint64(ti.Type.BlockSize()) * uint64(ti.Type.TypeSize()); want != ti.Size {
			t.Fatalf("tensor %q: size %d, dims %v of %s make %d", ti.Name, ti.Size, ti.Dims, ti.Type, want)
		}
		for _, s := range spans {
			if lo < s.hi && s.lo < lo+ti.Size {
				t.Fatalf("tensor %q overlaps another", ti.Name)
			}
		}
		spans = append(spans, span{lo, lo + ti.Size})
	}
}
