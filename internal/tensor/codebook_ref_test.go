package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// nearestLevel returns the index of the level nearest to v (levels
// ascending; ties to the lower index): the reference encoder's search.
func nearestLevel(L []float32, v float32) int {
	lo, hi := 0, len(L)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if v > (L[mid]+L[mid+1])*0.5 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// encodeCodebookBlockRef is the codebook encoder written plainly (every
// candidate scale coded in full, then its squared error): the reference
// encodeCodebookBlock must match choice for choice.
func encodeCodebookBlockRef(L []float32, x []float32, idx []uint8) float32 {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	if amax == 0 || amax != amax || math.IsInf(float64(amax), 0) {
		for i := range idx {
			idx[i] = uint8(len(L) / 2)
		}
		return 0
	}
	t := make([]uint8, len(x))
	best, bestE := float32(0), float32(math.Inf(1))
	try := func(d float32) {
		d = F16ToF32(F32ToF16(d))
		if d == 0 || math.IsInf(float64(d), 0) {
			return
		}
		inv := 1 / d
		for i, v := range x {
			t[i] = uint8(nearestLevel(L, v*inv))
		}
		if e := codebookSSE(L, x, d, t); e < bestE {
			best, bestE = d, e
			copy(idx, t)
		}
	}
	lmax := L[len(L)-1]
	steps, refits := cbScaleSteps[:], 1
	switch CodebookScaleMode(cbScaleMode.Load()) {
	case CodebookScaleMaxAbs:
		steps, refits = steps[:1], 0
	case CodebookScaleFine:
		steps, refits = cbScaleStepsFine[:], 2
	}
	for _, f := range steps {
		try(amax / lmax * f)
	}
	if best == 0 {
		return 0
	}
	for r := 0; r < refits; r++ {
		var sxl, sll float32
		for i, v := range x {
			l := L[idx[i]]
			sxl += v * l
			sll += l * l
		}
		if sll > 0 && sxl > 0 {
			try(sxl / sll)
		}
	}
	return best
}

// TestEncodeMatchesReference: the encoder (early exit, cell edges
// computed once) picks the same scale and indices as the plain reference,
// for every type and scale mode, on normal, heavy-tailed, constant and
// tiny blocks.
func TestEncodeMatchesReference(t *testing.T) {
	defer SetCodebookScaleMode(CodebookScaleSearch)
	r := rand.New(rand.NewPCG(9, 10))
	for _, mode := range []CodebookScaleMode{CodebookScaleSearch, CodebookScaleMaxAbs, CodebookScaleFine} {
		SetCodebookScaleMode(mode)
		for _, L := range [][]float32{cbLevels16[:], cbLevels8[:], cbLevels4[:]} {
			n := 64
			if len(L) == 4 {
				n = 32
			}
			x := make([]float32, n)
			got, want := make([]uint8, n), make([]uint8, n)
			for trial := 0; trial < 3000; trial++ {
				for i := range x {
					switch trial % 5 {
					case 0, 1:
						x[i] = float32(r.NormFloat64())
					case 2:
						x[i] = float32(r.NormFloat64() * r.ExpFloat64() * 3)
					case 3:
						x[i] = 0.5
					case 4:
						x[i] = float32(r.NormFloat64() * 1e-6)
					}
				}
				dg := encodeCodebookBlock(L, x, got)
				dw := encodeCodebookBlockRef(L, x, want)
				if dg != dw || string(got) != string(want) {
					t.Fatalf("mode %d, %d levels, trial %d: scale %g indices %v, reference %g %v", mode, len(L), trial, dg, got, dw, want)
				}
			}
		}
	}
}
