package tensor

import (
	"encoding/binary"
	"fmt"
)

// Query-aware refinement of codebook rows (issue 18, fourth round).
//
// Attention reads a key only through scores q·k, so what a key's
// quantization error e costs is E[(q·e)²] = eᵀCe, C = E[q qᵀ] the second
// moment of the queries that score it, not |e|². Queries share large
// directions (a common mean, a few strong components), so C is far from
// a multiple of the identity and the nearest-level indices, optimal for
// |e|², leave score error that other indices would cancel.
// RefineRow starts from the encoded row (the nearest levels under
// the encoder's scale search) and moves single values one level up or
// down, scales kept, while a move lowers eᵀCe: a greedy descent, in a
// fixed order, so the bytes depend only on x, the starting bytes and C.
// The format is unchanged: a refined row decodes like any other.

// The same refinement applies to q4_0 and q5_0 rows (value (k−8)·d and
// (k−16)·d): RefineRow.

var (
	refineLevelsQ4_0 = func() (l [16]float32) {
		for k := range l {
			l[k] = float32(k - 8)
		}
		return
	}()
	refineLevelsQ5_0 = func() (l [32]float32) {
		for k := range l {
			l[k] = float32(k - 16)
		}
		return
	}()
)

// Refinable reports whether RefineRow takes rows of type t.
func Refinable(t Type) bool { return t.IsCodebook() || t == Q4_0 || t == Q5_0 }

func refineLevels(t Type) []float32 {
	switch t {
	case Q4_0:
		return refineLevelsQ4_0[:]
	case Q5_0:
		return refineLevelsQ5_0[:]
	}
	return CodebookLevels(t)
}

// unpackCodebookBlock reads the scale and indices of one block of type t.
func unpackCodebookBlock(t Type, y []byte, idx *[64]uint8) float32 {
	d := f16(y)
	switch t {
	case Q4_0:
		for j := 0; j < 16; j++ {
			idx[j], idx[j+16] = y[2+j]&15, y[2+j]>>4
		}
	case Q5_0:
		qh := binary.LittleEndian.Uint32(y[2:])
		for j := 0; j < 16; j++ {
			idx[j] = y[6+j]&15 | uint8(qh>>j&1)<<4
			idx[j+16] = y[6+j]>>4 | uint8(qh>>(j+16)&1)<<4
		}
	case CB4:
		for j := 0; j < 32; j++ {
			idx[j], idx[j+32] = y[2+j]&15, y[2+j]>>4
		}
	case CB3:
		for i := 0; i < 64; i++ {
			lo := y[2+i%16] >> (2 * (i / 16)) & 3
			hi := y[18+i%8] >> (i / 8) & 1
			idx[i] = lo | hi<<2
		}
	case CB2:
		for i := 0; i < 32; i++ {
			idx[i] = y[2+i%8] >> (2 * (i / 8)) & 3
		}
	default:
		panic(fmt.Sprintf("tensor.unpackCodebookBlock: %s is not a codebook type", t))
	}
	return d
}

// packRefined writes the indices of one block of type t (scale unchanged).
func packRefined(t Type, y []byte, d float32, idx *[64]uint8) {
	switch t {
	case Q4_0:
		for j := 0; j < 16; j++ {
			y[2+j] = idx[j] | idx[j+16]<<4
		}
	case Q5_0:
		var qh uint32
		for j := 0; j < 16; j++ {
			y[6+j] = idx[j]&15 | (idx[j+16]&15)<<4
			qh |= uint32(idx[j]>>4) << j
			qh |= uint32(idx[j+16]>>4) << (j + 16)
		}
		binary.LittleEndian.PutUint32(y[2:], qh)
	default:
		PackCodebookBlock(t, y, d, idx)
	}
}

// RefineOps are the vector kernels RefineRow runs on (internal/kernels'
// SIMD ones in the cache; tensor cannot import them). Nil: plain Go.
type RefineOps struct {
	// DotRows sets y[i] = Σ_j w[i·len(x)+j]·x[j] for i < len(y).
	DotRows func(y, w, x []float32)
	// Axpy sets y[i] += a·x[i].
	Axpy func(a float32, x, y []float32)
}

func (o *RefineOps) dotRows(y, w, x []float32) {
	if o != nil && o.DotRows != nil {
		o.DotRows(y, w, x)
		return
	}
	n := len(x)
	for i := range y {
		var s float32
		for j, v := range w[i*n : i*n+n] {
			s += v * x[j]
		}
		y[i] = s
	}
}

func (o *RefineOps) axpy(a float32, x, y []float32) {
	if o != nil && o.Axpy != nil {
		o.Axpy(a, x, y)
		return
	}
	for i, v := range x {
		y[i] += a * v
	}
}

// RefineRow refines the row y (a codebook type, q4_0 or q5_0:
// Refinable; len(x) values, encoded from x) against the query second
// moment C (len(x)×len(x), row-major, symmetric — its row i is used as
// its column i —, any positive multiple of it: only signs of differences
// are used) for at most passes sweeps, in float32. ce is scratch of
// 4·len(x) float32s; ops the kernels (nil: plain Go).
func RefineRow(t Type, x []float32, y []byte, C []float32, passes int, ce []float32, ops *RefineOps) {
	n, B, tb := len(x), t.BlockSize(), t.TypeSize()
	if n%B != 0 || len(C) < n*n || len(ce) < 4*n || n > 1024 {
		panic("tensor.RefineRow: bad sizes")
	}
	L := refineLevels(t)
	var idxs [1024]uint8
	var ds [32]float32
	e := ce[n : 2*n]
	for b := 0; b < n/B; b++ {
		var idx [64]uint8
		d := unpackCodebookBlock(t, y[b*tb:], &idx)
		ds[b] = d
		copy(idxs[b*B:], idx[:B])
		xb, eb := x[b*B:b*B+B], e[b*B:b*B+B]
		for j, k := range idx[:B] {
			eb[j] = d*L[k] - xb[j]
		}
	}
	// Each value's two moves, one level down and one up, as changes of
	// its decoded value (0: none: at an end of the levels, or a zero scale).
	dn, up := ce[2*n:3*n], ce[3*n:4*n]
	moves := func(i int) {
		d, k0 := ds[i/B], int(idxs[i])
		cur := d * L[k0]
		dn[i], up[i] = 0, 0
		if d == 0 {
			return
		}
		if k0 > 0 {
			dn[i] = d*L[k0-1] - cur
		}
		if k0+1 < len(L) {
			up[i] = d*L[k0+1] - cur
		}
	}
	for i := 0; i < n; i++ {
		moves(i)
	}
	ce = ce[:n]
	ops.dotRows(ce, C[:n*n], e[:n])
	changed := false
	for p := 0; p < passes; p++ {
		moved := false
		for i := 0; i < n; i++ {
			// A move of δ changes eᵀCe by δ(2(Ce)ᵢ + δCᵢᵢ): the better of
			// the two if it lowers it (down first on a tie).
			c2, cii := 2*ce[i], C[i*n+i]
			gd := dn[i] * (c2 + dn[i]*cii)
			gu := up[i] * (c2 + up[i]*cii)
			var delta float32
			k := int(idxs[i])
			switch {
			case gd < 0 && !(gu < gd):
				delta, k = dn[i], k-1
			case gu < 0:
				delta, k = up[i], k+1
			default:
				continue
			}
			ops.axpy(delta, C[i*n:i*n+n], ce)
			idxs[i] = uint8(k)
			moves(i)
			moved, changed = true, true
		}
		if !moved {
			break
		}
	}
	if !changed {
		return
	}
	for b := 0; b < n/B; b++ {
		var idx [64]uint8
		copy(idx[:B], idxs[b*B:])
		packRefined(t, y[b*tb:], ds[b], &idx)
	}
}
