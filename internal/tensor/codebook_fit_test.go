package tensor

import (
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strings"
	"testing"
)

// fitCodebook fits levels of n entries to blocks of size B of the unit
// normal distribution (the rotated rows' shape) for the encoder as it is:
// Lloyd's iteration with the block scales — encode every block, then move
// each level to the least-squares centroid Σd·x/Σd² of the values coded
// with it — symmetrised and normalised to a largest level of 1.
func fitCodebook(n, B, blocks, iters int) []float32 {
	r := rand.New(rand.NewSource(20261205))
	x := make([]float32, blocks*B)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	L := make([]float32, n)
	for i := range L {
		L[i] = -1 + 2*(float32(i)+0.5)/float32(n)
	}
	idx := make([]uint8, B)
	for it := 0; it < iters; it++ {
		num := make([]float64, n)
		den := make([]float64, n)
		for b := 0; b < blocks; b++ {
			xb := x[b*B : (b+1)*B]
			d := encodeCodebookBlock(L, xb, idx)
			for i, v := range xb {
				num[idx[i]] += float64(d * v)
				den[idx[i]] += float64(d * d)
			}
		}
		for k := range L {
			if den[k] > 0 {
				L[k] = float32(num[k] / den[k])
			}
		}
		slices.Sort(L)
		for k := 0; k < n/2; k++ {
			m := (L[n-1-k] - L[k]) / 2
			L[k], L[n-1-k] = -m, m
		}
		top := L[n-1]
		for k := range L {
			L[k] /= top
		}
	}
	return L
}

func codebookMSE(L []float32, B, blocks int) float64 {
	r := rand.New(rand.NewSource(7))
	x := make([]float32, B)
	idx := make([]uint8, B)
	var e, s float64
	for b := 0; b < blocks; b++ {
		for i := range x {
			x[i] = float32(r.NormFloat64())
			s += float64(x[i] * x[i])
		}
		d := encodeCodebookBlock(L, x, idx)
		e += float64(codebookSSE(L, x, d, idx))
	}
	return e / s
}

// TestCodebookFit regenerates the level tables (KVSERVE_CBFIT=1 go test
// ./internal/tensor -run CodebookFit -v) and prints the relative squared
// error of each on normal blocks.
func TestCodebookFit(t *testing.T) {
	if os.Getenv("KVSERVE_CBFIT") == "" {
		t.Skip("KVSERVE_CBFIT=1 regenerates the codebook levels")
	}
	for _, c := range []struct{ n, B int }{{16, 64}, {8, 64}, {4, 32}} {
		L := fitCodebook(c.n, c.B, 20000, 40)
		var sb strings.Builder
		for _, v := range L {
			fmt.Fprintf(&sb, "%.6f, ", v)
		}
		t.Logf("%d levels, blocks of %d: {%s} rel MSE %.5f", c.n, c.B, sb.String(), codebookMSE(L, c.B, 5000))
	}
}
