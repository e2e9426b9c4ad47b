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
			ce := make([]float32, 2*n)
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
