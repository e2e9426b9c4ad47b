package cbkernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// encodeCase fills one block of x by case c: normal, heavy-tailed,
// constant, tiny (down to subnormal scales), huge (up to and past the
// largest binary16 scale), zero, sparse, values on the cell edges of a
// candidate scale (ties), two values only, NaN and infinities.
func encodeCase(r *rand.Rand, t tensor.Type, c int, x []float32) {
	L := tensor.CodebookLevels(t)
	switch c {
	case 0, 1:
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
	case 2:
		for i := range x {
			x[i] = float32(r.NormFloat64() * r.ExpFloat64() * 3)
		}
	case 3:
		v := float32(r.NormFloat64())
		for i := range x {
			x[i] = v
		}
	case 4:
		s := math.Pow(10, -float64(r.IntN(40))) // 1 .. 1e-39 (subnormal float32)
		for i := range x {
			x[i] = float32(r.NormFloat64() * s)
		}
	case 5:
		s := []float64{1e4, 3e4, 6e4, 7e4, 1.1e5, 1e6, 1e20, 1e37}[r.IntN(8)]
		for i := range x {
			x[i] = float32(r.NormFloat64() * s)
		}
	case 6:
		clear(x)
	case 7:
		clear(x)
		x[r.IntN(len(x))] = float32(r.NormFloat64() * 10)
		x[r.IntN(len(x))] = float32(r.NormFloat64())
	case 8:
		// Values on the cell edges of the scale amax·f and on levels.
		amax := float32(1 + r.Float64())
		f := tensor.CodebookScaleSteps()[r.IntN(5)]
		d := tensor.F16ToF32(tensor.F32ToF16(amax * f))
		for i := range x {
			k := r.IntN(len(L) - 1)
			switch r.IntN(3) {
			case 0:
				x[i] = (L[k] + L[k+1]) * 0.5 * d
			case 1:
				x[i] = L[k] * d
			default:
				x[i] = float32(r.NormFloat64())
			}
		}
		x[0] = amax
	case 9:
		for i := range x {
			x[i] = float32(1 - 2*r.IntN(2))
		}
	case 10:
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		x[r.IntN(len(x))] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32}[r.IntN(4)]
	case 11:
		// Integers (many exact equalities between candidates' errors).
		for i := range x {
			x[i] = float32(r.IntN(7) - 3)
		}
	}
}

// TestEncodeMatchesQuantizeRow: Encode writes exactly tensor.QuantizeRow's
// bytes at every CPU level, on rows mixing every kind of block (the
// indices QuantizeRow carries between blocks included); it also reports
// how often the SIMD encoder fell back to the reference for a block.
func TestEncodeMatchesQuantizeRow(t *testing.T) {
	for _, lv := range cpu.Levels() {
		t.Run(lv.String(), func(t *testing.T) {
			defer cpu.SetLevel(lv)()
			fallbacks, blocks := 0, 0
			defer func(f func(tensor.Type, []float32, *[64]uint8) float32) { encFallback = f }(encFallback)
			encFallback = func(t tensor.Type, x []float32, idx *[64]uint8) float32 {
				fallbacks++
				return tensor.EncodeCodebookBlock(t, x, idx)
			}
			r := rand.New(rand.NewPCG(18, 3))
			for _, typ := range []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2} {
				bs := typ.BlockSize()
				for trial := 0; trial < 400; trial++ {
					nb := 1 + r.IntN(16)
					x := make([]float32, nb*bs)
					for b := 0; b < nb; b++ {
						c := r.IntN(12)
						if trial%4 == 0 {
							c = r.IntN(2) // mostly normal rows too
						}
						encodeCase(r, typ, c, x[b*bs:(b+1)*bs])
					}
					got := make([]byte, typ.RowSize(len(x)))
					want := make([]byte, len(got))
					Encode(typ, got, x)
					tensor.QuantizeRow(typ, x, want)
					blocks += nb
					if string(got) != string(want) {
						for b := 0; b < nb; b++ {
							g, w := got[b*typ.TypeSize():(b+1)*typ.TypeSize()], want[b*typ.TypeSize():(b+1)*typ.TypeSize()]
							if string(g) != string(w) {
								t.Fatalf("%s trial %d block %d: %x, QuantizeRow %x\nx = %v", typ, trial, b, g, w, x[b*bs:(b+1)*bs])
							}
						}
					}
				}
			}
			t.Logf("%d of %d blocks fell back to the reference", fallbacks, blocks)
		})
	}
}

// TestEncodeNormalFallbackRate: on normal data (rotated cache rows) the
// sums decide almost every block; a fallback rate above 2% would mean the
// speed is lost (not a speed assertion: a check that the bound is not
// vacuous).
func TestEncodeNormalFallbackRate(t *testing.T) {
	if cpu.Float.Level() < cpu.AVX2 {
		t.Skip("no SIMD encoder on this CPU")
	}
	n := 0
	defer func(f func(tensor.Type, []float32, *[64]uint8) float32) { encFallback = f }(encFallback)
	encFallback = func(t tensor.Type, x []float32, idx *[64]uint8) float32 {
		n++
		return tensor.EncodeCodebookBlock(t, x, idx)
	}
	r := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 1<<16)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, typ := range []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2} {
		n = 0
		got := make([]byte, typ.RowSize(len(x)))
		want := make([]byte, len(got))
		Encode(typ, got, x)
		tensor.QuantizeRow(typ, x, want)
		if string(got) != string(want) {
			t.Fatalf("%s: bytes differ from QuantizeRow", typ)
		}
		nb := len(x) / typ.BlockSize()
		t.Logf("%s: %d of %d blocks fell back", typ, n, nb)
		if n*50 > nb {
			t.Errorf("%s: %d of %d blocks fell back to the reference", typ, n, nb)
		}
	}
}

// TestPackBlock: the SWAR packing equals tensor.PackCodebookBlock for
// random indices and scales.
func TestPackBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2} {
		nl := len(tensor.CodebookLevels(typ))
		var idx [64]uint8
		got, want := make([]byte, typ.TypeSize()), make([]byte, typ.TypeSize())
		for trial := 0; trial < 2000; trial++ {
			for i := range idx[:typ.BlockSize()] {
				idx[i] = uint8(r.IntN(nl))
				if trial%3 == 0 {
					idx[i] = uint8(nl - 1)
				}
			}
			d := float32(r.NormFloat64())
			packBlock(typ, got, d, &idx)
			tensor.PackCodebookBlock(typ, want, d, &idx)
			if string(got) != string(want) {
				t.Fatalf("%s: %x, want %x (indices %v)", typ, got, want, idx[:typ.BlockSize()])
			}
		}
	}
}

// TestEncodeBlockKernel: where the whole-block kernel (mode 8) decides a
// block, its scale and indices are the reference's; on normal blocks it
// decides nearly all (else the speed would be lost to encodeBlockFast).
func TestEncodeBlockKernel(t *testing.T) {
	if cpu.Float.Level() < cpu.AVX2 {
		t.Skip("no SIMD encoder on this CPU")
	}
	for _, lv := range cpu.Levels()[1:] {
		t.Run(lv.String(), func(t *testing.T) {
			defer cpu.SetLevel(lv)()
			r := rand.New(rand.NewPCG(uint64(lv), 19))
			for _, typ := range []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2} {
				k, tab := encKernelFor(typ)
				bs := typ.BlockSize()
				x := make([]float32, bs)
				var outs [encChunk]encOut
				out := &outs[0]
				var idx [64]uint8
				blk, want := make([]byte, typ.TypeSize()), make([]byte, typ.TypeSize())
				decided, normal, normalDecided := 0, 0, 0
				const n = 20000
				for trial := 0; trial < n; trial++ {
					c := trial % 12
					if trial%2 == 0 {
						c = 0
					}
					encodeCase(r, typ, c, x)
					k(&x[0], tab, out, 8, &blk[0], 1)
					if c == 0 {
						normal++
					}
					if out.rstatus != 0 {
						continue
					}
					decided++
					if c == 0 {
						normalDecided++
					}
					d := tensor.EncodeCodebookBlock(typ, x, &idx)
					if d != out.d[out.best] || string(idx[:bs]) != string(out.idx[out.best][:bs]) {
						t.Fatalf("%s case %d: kernel scale %g slot %d indices %v, reference %g %v", typ, c, out.d[out.best], out.best, out.idx[out.best][:bs], d, idx[:bs])
					}
					tensor.PackCodebookBlock(typ, want, d, &idx)
					if string(blk) != string(want) || string(out.state[:bs]) != string(idx[:bs]) || out.done != 1 {
						t.Fatalf("%s case %d: kernel block %x (state %v, done %d), reference %x", typ, c, blk, out.state[:bs], out.done, want)
					}
				}
				t.Logf("%s: kernel decided %d of %d blocks (%d of %d normal)", typ, decided, n, normalDecided, normal)
				if normalDecided*100 < normal*95 {
					t.Errorf("%s: kernel decided only %d of %d normal blocks", typ, normalDecided, normal)
				}
			}
		})
	}
}

// TestEncLayout: encTables and encOut have the offsets the kernels use
// (scripts/gen-cb-encode.py).
func TestEncLayout(t *testing.T) {
	var tb encTables
	var o encOut
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"mids", unsafe.Offsetof(tb.mids), 0}, {"levels", unsafe.Offsetof(tb.levels), 64}, {"fr", unsafe.Offsetof(tb.fr), 128},
		{"mids8", unsafe.Offsetof(tb.mids8), 160}, {"levels8", unsafe.Offsetof(tb.levels8), 640}, {"shuf", unsafe.Offsetof(tb.shuf), 704},
		{"perm", unsafe.Offsetof(tb.perm), 736}, {"sevens", unsafe.Offsetof(tb.sevens), 768}, {"steps", unsafe.Offsetof(tb.steps), 800},
		{"f64", unsafe.Offsetof(tb.f64), 1056}, {"big", unsafe.Offsetof(tb.big), 1080},
		{"d", unsafe.Offsetof(o.d), 384}, {"inv", unsafe.Offsetof(o.inv), 416}, {"e", unsafe.Offsetof(o.e), 448},
		{"sxl", unsafe.Offsetof(o.sxl), 480}, {"sll", unsafe.Offsetof(o.sll), 512}, {"sabs", unsafe.Offsetof(o.sabs), 544},
		{"amax", unsafe.Offsetof(o.amax), 576}, {"bad", unsafe.Offsetof(o.bad), 580}, {"best", unsafe.Offsetof(o.best), 584},
		{"status", unsafe.Offsetof(o.status), 588}, {"state", unsafe.Offsetof(o.state), 592}, {"dst", unsafe.Offsetof(o.dst), 656},
		{"left", unsafe.Offsetof(o.left), 664}, {"done", unsafe.Offsetof(o.done), 672}, {"xb", unsafe.Offsetof(o.xb), 680},
		{"ci", unsafe.Offsetof(o.ci), 688}, {"cn", unsafe.Offsetof(o.cn), 696}, {"rstatus", unsafe.Offsetof(o.rstatus), 704},
		{"size", unsafe.Sizeof(o), 712},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, kernels use %d", c.name, c.got, c.want)
		}
	}
}
