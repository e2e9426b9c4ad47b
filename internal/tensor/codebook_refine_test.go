package tensor

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

func refineRow(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// scoreErr is eᵀCe for row y (type t) against x.
func scoreErr(t Type, x []float32, y []byte, C []float32) float64 {
	n := len(x)
	d := make([]float32, n)
	DequantizeRow(t, y, d)
	var s float64
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			s += float64(d[a]-x[a]) * float64(C[a*n+b]) * float64(d[b]-x[b])
		}
	}
	return s
}

// With C the identity, the nearest levels are already optimal: refining
// changes no byte of a codebook row. With queries sharing a direction, it lowers eᵀCe (never
// raises it), the row stays a valid row of its type (same scales), and it
// is deterministic.
func TestRefineRow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range []Type{CB4, CB3, CB2, Q4_0, Q5_0} {
		for _, n := range []int{64, 128} {
			I := make([]float32, n*n)
			for i := 0; i < n; i++ {
				I[i*n+i] = 1
			}
			m := refineRow(r, n)
			Cm := make([]float32, n*n)
			for a := 0; a < n; a++ {
				for b := 0; b < n; b++ {
					Cm[a*n+b] = 4 * m[a] * m[b]
				}
				Cm[a*n+a] += 1
			}
			ce := make([]float32, 4*n)
			var before, after float64
			for trial := 0; trial < 50; trial++ {
				x := refineRow(r, n)
				y := make([]byte, typ.RowSize(n))
				QuantizeRow(typ, x, y)
				y0 := bytes.Clone(y)
				RefineRow(typ, x, y, I, 4, ce, nil)
				// (ggml's quantizers round x/d+½ through 1/d, which is
				// not always the nearest level: they may move)
				if typ.IsCodebook() && !bytes.Equal(y, y0) {
					t.Fatalf("%s/%d: identity C changed the row", typ, n)
				}
				y0 = bytes.Clone(y)
				e0 := scoreErr(typ, x, y, Cm)
				RefineRow(typ, x, y, Cm, 4, ce, nil)
				e1 := scoreErr(typ, x, y, Cm)
				if e1 > e0*(1+1e-9) {
					t.Fatalf("%s/%d: eᵀCe rose %.6g → %.6g", typ, n, e0, e1)
				}
				for b := 0; b < n/typ.BlockSize(); b++ { // scales kept
					o := b * typ.TypeSize()
					if y[o] != y0[o] || y[o+1] != y0[o+1] {
						t.Fatalf("%s/%d: block %d scale changed", typ, n, b)
					}
				}
				y2 := bytes.Clone(y0)
				RefineRow(typ, x, y2, Cm, 4, ce, nil)
				if !bytes.Equal(y, y2) {
					t.Fatalf("%s/%d: not deterministic", typ, n)
				}
				before += e0
				after += e1
			}
			if !(after < 0.9*before) || math.IsNaN(after) {
				t.Fatalf("%s/%d: eᵀCe %.4g → %.4g: the refinement gained too little", typ, n, before, after)
			}
			t.Logf("%s/%d: eᵀCe %.4g → %.4g (%.0f%%)", typ, n, before, after, 100*(after/before-1))
		}
	}
}

// refRefineRow is RefineRow written plainly (each value's two moves tried
// in turn against C's column), the reference its bookkeeping of the
// moves must reproduce byte for byte.
func refRefineRow(t Type, x []float32, y []byte, C []float32, passes int) {
	n, B, tb := len(x), t.BlockSize(), t.TypeSize()
	L := refineLevels(t)
	idxs := make([]uint8, n)
	ds := make([]float32, n/B)
	e, ce := make([]float32, n), make([]float32, n)
	for b := 0; b < n/B; b++ {
		var idx [64]uint8
		ds[b] = unpackCodebookBlock(t, y[b*tb:], &idx)
		copy(idxs[b*B:], idx[:B])
	}
	for i := range e {
		e[i] = ds[i/B]*L[idxs[i]] - x[i]
	}
	(*RefineOps)(nil).dotRows(ce, C, e)
	for p := 0; p < passes; p++ {
		moved := false
		for i := 0; i < n; i++ {
			d := ds[i/B]
			if d == 0 {
				continue
			}
			k0 := int(idxs[i])
			cur := d * L[k0]
			bestK, bestG := k0, float32(0)
			for _, k := range [2]int{k0 - 1, k0 + 1} {
				if k < 0 || k >= len(L) {
					continue
				}
				delta := d*L[k] - cur
				if g := delta * (2*ce[i] + delta*C[i*n+i]); g < bestG {
					bestK, bestG = k, g
				}
			}
			if bestK == k0 {
				continue
			}
			delta := d*L[bestK] - cur
			for a := 0; a < n; a++ {
				ce[a] += delta * C[i*n+a]
			}
			idxs[i] = uint8(bestK)
			moved = true
		}
		if !moved {
			break
		}
	}
	for b := 0; b < n/B; b++ {
		var idx [64]uint8
		copy(idx[:B], idxs[b*B:])
		packRefined(t, y[b*tb:], ds[b], &idx)
	}
}

// RefineRow's move bookkeeping equals the plain reference, byte for byte,
// for every refinable type and query laws from isotropic to one strong
// direction (rows at the levels' ends and zero blocks included).
func TestRefineRowMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range []Type{CB4, CB3, CB2, Q4_0, Q5_0} {
		for _, n := range []int{64, 128} {
			for _, strength := range []float32{0, 1, 8} {
				m := refineRow(r, n)
				C := make([]float32, n*n)
				for a := 0; a < n; a++ {
					for b := 0; b < n; b++ {
						C[a*n+b] = strength * m[a] * m[b]
					}
					C[a*n+a] += 1
				}
				ce := make([]float32, 4*n)
				for trial := 0; trial < 40; trial++ {
					x := refineRow(r, n)
					switch trial % 4 {
					case 1: // a zero block
						clear(x[:typ.BlockSize()])
					case 2: // outliers: indices at the levels' ends
						x[3] *= 30
						x[n-1] *= -30
					}
					y := make([]byte, typ.RowSize(n))
					QuantizeRow(typ, x, y)
					want := bytes.Clone(y)
					refRefineRow(typ, x, want, C, 4)
					RefineRow(typ, x, y, C, 4, ce, nil)
					if !bytes.Equal(y, want) {
						t.Fatalf("%s/%d strength %g trial %d: bytes differ from the reference", typ, n, strength, trial)
					}
				}
			}
		}
	}
}
