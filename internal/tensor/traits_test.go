package tensor_test

import (
	"slices"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// TestTraitsTable checks every row of the table for consistency: its name
// parses back, its layout is whole, each use has the kernels and
// references it needs, and the kernel family matches the layout.
func TestTraitsTable(t *testing.T) {
	for i := 0; i < 64; i++ {
		typ := tensor.Type(i)
		r, ok := typ.Traits()
		if !ok {
			if typ.Known() || typ.BlockSize() != 0 || typ.Allows(tensor.Weight) || typ.Has(tensor.KGemm) {
				t.Errorf("type %d: not in the table but reported known", i)
			}
			continue
		}
		t.Run(typ.String(), func(t *testing.T) {
			if r.Type != typ || r.Name != typ.String() || r.BlockSize != typ.BlockSize() || r.TypeSize != typ.TypeSize() {
				t.Fatalf("row %+v does not match the type's accessors", r)
			}
			if p, ok := tensor.ParseType(r.Name); !ok || p != typ {
				t.Errorf("ParseType(%q) = %v, %v", r.Name, p, ok)
			}
			if r.BlockSize <= 0 || r.TypeSize <= 0 {
				t.Errorf("layout %d elements in %d bytes", r.BlockSize, r.TypeSize)
			}
			if typ.VecDotType() != r.VecDot {
				t.Errorf("VecDotType() = %v, row says %v", typ.VecDotType(), r.VecDot)
			}
			if (r.Family == tensor.NoKernels) != (r.Kernels == 0) {
				t.Errorf("family %v with kernels %b", r.Family, r.Kernels)
			}
			if r.Family == tensor.FloatKernels && r.BlockSize != 1 {
				t.Errorf("float kernels for a block size of %d", r.BlockSize)
			}
			if typ.Has(tensor.KGemm) {
				vt := r.VecDot
				if !tensor.HasVecDot(typ) || (vt != tensor.F32 && !vt.Has(tensor.KEncode)) {
					t.Errorf("Gemm kernel but reference dot %v, activations %v without an Encode kernel", tensor.HasVecDot(typ), vt)
				}
				if r.BlockSize%vt.BlockSize() != 0 {
					t.Errorf("blocks of %d, activation blocks of %d", r.BlockSize, vt.BlockSize())
				}
			}
			if typ.Has(tensor.KEncode) && !tensor.Quantizable(typ) || typ.Has(tensor.KDecode) && !tensor.Dequantizable(typ) {
				t.Errorf("an Encode/Decode kernel without its reference")
			}
			if typ.Allows(tensor.Weight) && (!typ.Has(tensor.KGemm) || !tensor.Dequantizable(typ)) {
				t.Errorf("weight type without a Gemm kernel and a dequantizer (kernels %b)", r.Kernels)
			}
			if typ.Allows(tensor.Cache) && !typ.Has(tensor.KGemm|tensor.KAccum|tensor.KEncode|tensor.KDecode) {
				t.Errorf("cache type without the Gemm, AccumRows, Encode and Decode kernels (kernels %b)", r.Kernels)
			}
		})
	}
}

// TestTraitsQueries pins the lists the rest of the program reads from the
// table to today's types.
func TestTraitsQueries(t *testing.T) {
	ty := func(names ...string) []tensor.Type {
		var out []tensor.Type
		for _, n := range names {
			typ, ok := tensor.ParseType(n)
			if !ok {
				t.Fatalf("ParseType(%q) failed", n)
			}
			out = append(out, typ)
		}
		return out
	}
	sorted := func(x []tensor.Type) []tensor.Type { x = slices.Clone(x); slices.Sort(x); return x }
	for _, c := range []struct {
		what      string
		got, want []tensor.Type
		ordered   bool
	}{
		// kvcache.Types: llama.cpp's order.
		{"TypesFor(Cache)", tensor.TypesFor(tensor.Cache), ty("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "cb4", "cb3", "cb2"), true},
		{"TypesFor(Weight)", tensor.TypesFor(tensor.Weight), ty("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "q4_K", "q5_K", "q6_K", "mxfp4", "q3_K", "q2_K", "iq4_xs",
			"iq3_s", "iq3_xxs", "iq2_s", "iq2_xs", "iq2_xxs", "iq1_m", "iq1_s"), false},
		{"TypesFor(Weight|Cache)", tensor.TypesFor(tensor.Weight | tensor.Cache), ty("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"), true},
		{"TypesWith(KGemm)", tensor.TypesWith(tensor.KGemm), ty("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "cb4", "cb3", "cb2", "q4_K", "q5_K", "q6_K", "mxfp4",
			"q3_K", "q2_K", "iq4_xs", "iq3_s", "iq3_xxs", "iq2_s", "iq2_xs", "iq2_xxs", "iq1_m", "iq1_s"), true},
		{"TypesWith(KAccum)", tensor.TypesWith(tensor.KAccum), tensor.TypesFor(tensor.Cache), true},
		{"TypesWith(KEncode)", tensor.TypesWith(tensor.KEncode), ty("f32", "f16", "bf16", "q8_0", "q8_1", "q8_K", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "cb4", "cb3", "cb2"), false},
		{"TypesWith(KDecode)", tensor.TypesWith(tensor.KDecode), tensor.TypesFor(tensor.Cache), true},
	} {
		got, want := c.got, c.want
		if !c.ordered {
			got, want = sorted(got), sorted(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if tensor.Q4_K.Allows(tensor.Cache) || !tensor.Q4_K.Allows(tensor.Weight) || tensor.Q8_1.Allows(tensor.Weight) ||
		tensor.Q8_0.Allows(0) || tensor.Q8_0.Has(0) || tensor.Type(999).Allows(tensor.Weight) || tensor.Type(999).Has(tensor.KGemm) {
		t.Error("Allows/Has disagree with the table")
	}
	if f := tensor.F16.Family(); f != tensor.FloatKernels {
		t.Errorf("F16.Family() = %v", f)
	}
	if f := tensor.Q4_K.Family(); f != tensor.BlockKernels {
		t.Errorf("Q4_K.Family() = %v", f)
	}
	if f := tensor.TQ1_0.Family(); f != tensor.NoKernels {
		t.Errorf("TQ1_0.Family() = %v", f)
	}
}

// TestReferencesMatchTable: the test lists of this package are the
// table's reference sets, so every type with a reference is tested
// against ggml's (kvserve's codebook types, which ggml has not, are tested
// in codebook_test.go).
func TestReferencesMatchTable(t *testing.T) {
	var q, d, v []tensor.Type
	for i := 0; i < 64; i++ {
		typ := tensor.Type(i)
		if typ.IsCodebook() {
			continue
		}
		if tensor.Quantizable(typ) {
			q = append(q, typ)
		}
		if tensor.Dequantizable(typ) {
			d = append(d, typ)
		}
		if tensor.HasVecDot(typ) {
			v = append(v, typ)
		}
	}
	all, dot := slices.Clone(allTypes), append(slices.Clone(dotTypes), readOnlyTypes...)
	read := append(slices.Clone(allTypes), readOnlyTypes...)
	slices.Sort(all)
	slices.Sort(dot)
	slices.Sort(read)
	if !slices.Equal(q, all) || !slices.Equal(d, read) || !slices.Equal(v, dot) {
		t.Errorf("quantizable %v, dequantizable %v, dot %v; tested %v and %v", q, d, v, allTypes, dotTypes)
	}
}
