package tensor

import "encoding/binary"

// The IQ weight types below 4 bits, read-only (llama.cpp writes them, with
// an importance matrix for most). Each 256-element super-block holds
// groups of 8 (IQ2, IQ1) or 4 (IQ3) weights as indices into a lattice
// (the grids of iqgrids.go, generated from ggml's source), per-group sign
// bits and small per-sub-block scales. Layouts (d binary16):
//
//	IQ2_XXS (66 B): d, qs[32]uint16; per 32 elements two uint32 a0, a1:
//	   a0's bytes index iq2xxs_grid for groups 0-3, a1's 7-bit fields the
//	   groups' signs (ksigns_iq2xs), a1>>28 the scale s; x = d·(0.5+s)·¼·g.
//	IQ2_XS (74 B): d, qs[32]uint16 (9-bit index into iq2xs_grid, 7-bit
//	   sign field), scales[8] (a nibble per 16 elements).
//	IQ2_S (82 B): d, qs[64] (index low bytes, then the signs, a byte per
//	   group), qh[8] (index bits 8-9), scales[8] (nibbles per 16).
//	IQ3_XXS (98 B): d, qs[64] (iq3xxs_grid indices, 4 weights each),
//	   then per 32 elements a uint32: four 7-bit sign fields and s = >>28;
//	   x = d·(0.5+s)·½·g.
//	IQ3_S (110 B): d, qs[64], qh[8] (index bit 8), signs[32], scales[4]
//	   (a nibble per 32); x = d·(1+2s)·g.
//	IQ1_S (50 B): d, qs[32], qh[8]uint16 (index bits 8-10 per group, the
//	   scale in bits 12-14, the delta's sign in bit 15);
//	   x = d·(2s+1)·(g ± ⅛), g ∈ {-1, 0, 1} from iq1s_grid.
//	IQ1_M (56 B): qs[32], qh[16] (index bits 8-10 and delta signs of two
//	   groups per byte), scales[8] (3-bit scales per 16 elements, and the
//	   binary16 d in the top nibbles of the four uint16).
//
// In the super-block form (superblock.go) the weights are the signed grid
// values (IQ3_XXS's halved: they are all even; IQ1's as 8g ± 1), the
// scales the odd integers 2s+1 (IQ3_S: 1+2s), and mult the rest: ⅛ for
// IQ2 and IQ1, ½ for IQ3_XXS, 1 for IQ3_S.

const (
	sizeIQ2_XXS = 66
	sizeIQ2_XS  = 74
	sizeIQ2_S   = 82
	sizeIQ3_XXS = 98
	sizeIQ3_S   = 110
	sizeIQ1_S   = 50
	sizeIQ1_M   = 56
)

// iqKind says how a type's dequantizer rounds (ggml's float operations).
type iqKind uint8

const (
	iqQuarter iqKind = iota // IQ2_*: ((d·(0.5+s))·0.25)·g
	iqHalf                  // IQ3_XXS: ((d·(0.5+s))·0.5)·g
	iqOdd                   // IQ3_S: (d·(1+2s))·g
	iqDelta                 // IQ1_*: (d·(2s+1))·(g+δ)
)

var (
	formIQ2_XXS = superForm{unpack: unpackIQ2_XXS, mult: 0.125, maxQ: 43}
	formIQ2_XS  = superForm{unpack: unpackIQ2_XS, mult: 0.125, maxQ: 43}
	formIQ2_S   = superForm{unpack: unpackIQ2_S, mult: 0.125, maxQ: 43}
	formIQ3_XXS = superForm{unpack: unpackIQ3_XXS, mult: 0.5, maxQ: 31}
	formIQ3_S   = superForm{unpack: unpackIQ3_S, mult: 1, maxQ: 15}
	formIQ1_S   = superForm{unpack: unpackIQ1_S, mult: 0.125, maxQ: 9}
	formIQ1_M   = superForm{unpack: unpackIQ1_M, mult: 0.125, maxQ: 9}
)

func superFormIQ(t Type) *superForm {
	switch t {
	case IQ2_XXS:
		return &formIQ2_XXS
	case IQ2_XS:
		return &formIQ2_XS
	case IQ2_S:
		return &formIQ2_S
	case IQ3_XXS:
		return &formIQ3_XXS
	case IQ3_S:
		return &formIQ3_S
	case IQ1_S:
		return &formIQ1_S
	case IQ1_M:
		return &formIQ1_M
	}
	return nil
}

// signedGrid8 writes the 8 bytes of grid entry g with the signs of the
// ksigns field (bit j negates weight j), divided by div.
func signedGrid8(q []int8, g uint64, signs uint8, div int8) {
	for j := 0; j < 8; j++ {
		v := int8(g>>(8*j)) / div
		if signs>>j&1 != 0 {
			v = -v
		}
		q[j] = v
	}
}

func signedGrid4(q []int8, g uint32, signs uint8, div int8) {
	for j := 0; j < 4; j++ {
		v := int8(g>>(8*j)) / div
		if signs>>j&1 != 0 {
			v = -v
		}
		q[j] = v
	}
}

func unpackIQ2_XXS(b []byte, u *SuperBlock) {
	u.D = f16(b)
	for ib := 0; ib < 8; ib++ {
		a0 := binary.LittleEndian.Uint32(b[2+8*ib:])
		a1 := binary.LittleEndian.Uint32(b[6+8*ib:])
		sc := int32(2*(a1>>28) + 1)
		u.Scale[2*ib], u.Scale[2*ib+1] = sc, sc
		for l := 0; l < 4; l++ {
			signedGrid8(u.Q[32*ib+8*l:], iq2xxsGrid[a0>>(8*l)&255], ksignsIQ2XS[a1>>(7*l)&127], 1)
		}
	}
}

func unpackIQ2_XS(b []byte, u *SuperBlock) {
	u.D = f16(b)
	for ib := 0; ib < 8; ib++ {
		s := b[66+ib]
		u.Scale[2*ib], u.Scale[2*ib+1] = int32(2*(s&15)+1), int32(2*(s>>4)+1)
		for l := 0; l < 4; l++ {
			v := binary.LittleEndian.Uint16(b[2+8*ib+2*l:])
			signedGrid8(u.Q[32*ib+8*l:], iq2xsGrid[v&511], ksignsIQ2XS[v>>9], 1)
		}
	}
}

func unpackIQ2_S(b []byte, u *SuperBlock) {
	u.D = f16(b)
	qs, signs, qh, scales := b[2:34], b[34:66], b[66:74], b[74:82]
	for ib := 0; ib < 8; ib++ {
		s := scales[ib]
		u.Scale[2*ib], u.Scale[2*ib+1] = int32(2*(s&15)+1), int32(2*(s>>4)+1)
		for l := 0; l < 4; l++ {
			idx := int(qs[4*ib+l]) | int(qh[ib])<<(8-2*l)&0x300
			signedGrid8(u.Q[32*ib+8*l:], iq2sGrid[idx], signs[4*ib+l], 1)
		}
	}
}

func unpackIQ3_XXS(b []byte, u *SuperBlock) {
	u.D = f16(b)
	qs, ss := b[2:66], b[66:98]
	for ib := 0; ib < 8; ib++ {
		a := binary.LittleEndian.Uint32(ss[4*ib:])
		sc := int32(2*(a>>28) + 1)
		u.Scale[2*ib], u.Scale[2*ib+1] = sc, sc
		for l := 0; l < 4; l++ {
			signs := ksignsIQ2XS[a>>(7*l)&127]
			q := u.Q[32*ib+8*l:]
			signedGrid4(q, iq3xxsGrid[qs[8*ib+2*l]], signs, 2)
			signedGrid4(q[4:], iq3xxsGrid[qs[8*ib+2*l+1]], signs>>4, 2)
		}
	}
}

func unpackIQ3_S(b []byte, u *SuperBlock) {
	u.D = f16(b)
	qs, qh, signs, scales := b[2:66], b[66:74], b[74:106], b[106:110]
	for ib := 0; ib < 8; ib++ {
		sc := int32(1 + 2*(scales[ib/2]>>(4*(ib%2))&15))
		u.Scale[2*ib], u.Scale[2*ib+1] = sc, sc
		h := int(qh[ib])
		for l := 0; l < 4; l++ {
			q := u.Q[32*ib+8*l:]
			i1 := int(qs[8*ib+2*l]) | h<<(8-2*l)&256
			i2 := int(qs[8*ib+2*l+1]) | h<<(7-2*l)&256
			s := signs[4*ib+l]
			signedGrid4(q, iq3sGrid[i1], s, 1)
			signedGrid4(q[4:], iq3sGrid[i2], s>>4, 1)
		}
	}
}

// iq1Group writes 8g ± 1 for grid entry g (int8 values -1, 0, 1).
func iq1Group(q []int8, g uint64, neg bool) {
	d := int8(1)
	if neg {
		d = -1
	}
	for j := 0; j < 8; j++ {
		q[j] = 8*int8(g>>(8*j)) + d
	}
}

func unpackIQ1_S(b []byte, u *SuperBlock) {
	u.D = f16(b)
	qs, qh := b[2:34], b[34:50]
	for ib := 0; ib < 8; ib++ {
		h := binary.LittleEndian.Uint16(qh[2*ib:])
		sc := int32(2*(h>>12&7) + 1)
		u.Scale[2*ib], u.Scale[2*ib+1] = sc, sc
		for l := 0; l < 4; l++ {
			idx := int(qs[4*ib+l]) | int(h>>(3*l)&7)<<8
			iq1Group(u.Q[32*ib+8*l:], iq1sGrid[idx], h&0x8000 != 0)
		}
	}
}

func unpackIQ1_M(b []byte, u *SuperBlock) {
	qs, qh, scb := b[0:32], b[32:48], b[48:56]
	var sc [4]uint16
	for i := range sc {
		sc[i] = binary.LittleEndian.Uint16(scb[2*i:])
	}
	u.D = F16ToF32(sc[0]>>12 | sc[1]>>8&0x00f0 | sc[2]>>4&0x0f00 | sc[3]&0xf000)
	for ib := 0; ib < 8; ib++ {
		s := sc[ib/2] >> (6 * (ib % 2))
		u.Scale[2*ib], u.Scale[2*ib+1] = int32(2*(s&7)+1), int32(2*(s>>3&7)+1)
		h0, h1 := int(qh[2*ib]), int(qh[2*ib+1])
		idx := [4]int{int(qs[4*ib]) | h0<<8&0x700, int(qs[4*ib+1]) | h0<<4&0x700,
			int(qs[4*ib+2]) | h1<<8&0x700, int(qs[4*ib+3]) | h1<<4&0x700}
		neg := [4]bool{h0&0x08 != 0, h0&0x80 != 0, h1&0x08 != 0, h1&0x80 != 0}
		for l := 0; l < 4; l++ {
			iq1Group(u.Q[32*ib+8*l:], iq1sGrid[idx[l]], neg[l])
		}
	}
}

// dequantizeIQ converts super-blocks of IQ type t with ggml's float
// operations (dequantize_row_iq*), from their super-block decoding.
func dequantizeIQ(f *superForm, kind iqKind, ts int, x []byte, y []float32) {
	u := superPool.Get().(*SuperBlock)
	defer superPool.Put(u)
	for ib := 0; ib < len(y)/qkK; ib++ {
		f.unpack(x[ib*ts:ib*ts+ts], u)
		yb := y[ib*qkK : ib*qkK+qkK]
		for k := 0; k < 16; k++ {
			sc := float32(u.Scale[k])
			var db float32
			switch kind {
			case iqQuarter:
				db = float32(u.D*(sc*0.5)) * 0.25 // 0.5+s = (2s+1)/2 exactly
			case iqHalf:
				db = float32(u.D*(sc*0.5)) * 0.5
			default:
				db = u.D * sc
			}
			for e := 16 * k; e < 16*k+16; e++ {
				q := u.Q[e]
				switch kind {
				case iqDelta:
					yb[e] = db * (float32(q) * 0.125) // g ± ⅛ exactly
				case iqHalf:
					yb[e] = signed(db*float32(2*abs8(q)), q)
				default:
					yb[e] = signed(db*float32(abs8(q)), q)
				}
			}
		}
	}
}

func abs8(q int8) int32 {
	if q < 0 {
		return -int32(q)
	}
	return int32(q)
}

func signed(v float32, q int8) float32 {
	if q < 0 {
		return -v
	}
	return v
}

func dequantizeIQ2_XXS(x []byte, y []float32) {
	dequantizeIQ(&formIQ2_XXS, iqQuarter, sizeIQ2_XXS, x, y)
}
func dequantizeIQ2_XS(x []byte, y []float32) { dequantizeIQ(&formIQ2_XS, iqQuarter, sizeIQ2_XS, x, y) }
func dequantizeIQ2_S(x []byte, y []float32)  { dequantizeIQ(&formIQ2_S, iqQuarter, sizeIQ2_S, x, y) }
func dequantizeIQ3_XXS(x []byte, y []float32) {
	dequantizeIQ(&formIQ3_XXS, iqHalf, sizeIQ3_XXS, x, y)
}
func dequantizeIQ3_S(x []byte, y []float32) { dequantizeIQ(&formIQ3_S, iqOdd, sizeIQ3_S, x, y) }
func dequantizeIQ1_S(x []byte, y []float32) { dequantizeIQ(&formIQ1_S, iqDelta, sizeIQ1_S, x, y) }
func dequantizeIQ1_M(x []byte, y []float32) { dequantizeIQ(&formIQ1_M, iqDelta, sizeIQ1_M, x, y) }

func vecDotIQ2_XXS(n int, w, x []byte) float32 {
	return vecDotSuper(&formIQ2_XXS, sizeIQ2_XXS, n, w, x)
}
func vecDotIQ2_XS(n int, w, x []byte) float32 { return vecDotSuper(&formIQ2_XS, sizeIQ2_XS, n, w, x) }
func vecDotIQ2_S(n int, w, x []byte) float32  { return vecDotSuper(&formIQ2_S, sizeIQ2_S, n, w, x) }
func vecDotIQ3_XXS(n int, w, x []byte) float32 {
	return vecDotSuper(&formIQ3_XXS, sizeIQ3_XXS, n, w, x)
}
func vecDotIQ3_S(n int, w, x []byte) float32 { return vecDotSuper(&formIQ3_S, sizeIQ3_S, n, w, x) }
func vecDotIQ1_S(n int, w, x []byte) float32 { return vecDotSuper(&formIQ1_S, sizeIQ1_S, n, w, x) }
func vecDotIQ1_M(n int, w, x []byte) float32 { return vecDotSuper(&formIQ1_M, sizeIQ1_M, n, w, x) }

// IQGrid8 returns a copy of the lattice of IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S or
// IQ1_M (8 signed bytes per entry, as the layouts above index it), for
// kernels that decode the packed rows themselves; nil for other types.
func IQGrid8(t Type) []uint64 {
	switch t {
	case IQ2_XXS:
		return append([]uint64(nil), iq2xxsGrid[:]...)
	case IQ2_XS:
		return append([]uint64(nil), iq2xsGrid[:]...)
	case IQ2_S:
		return append([]uint64(nil), iq2sGrid[:]...)
	case IQ1_S, IQ1_M:
		return append([]uint64(nil), iq1sGrid[:]...)
	}
	return nil
}

// IQGrid4 is IQGrid8 for IQ3_XXS and IQ3_S (4 bytes per entry).
func IQGrid4(t Type) []uint32 {
	switch t {
	case IQ3_XXS:
		return append([]uint32(nil), iq3xxsGrid[:]...)
	case IQ3_S:
		return append([]uint32(nil), iq3sGrid[:]...)
	}
	return nil
}

// KSignsIQ2XS returns a copy of ggml's ksigns_iq2xs: the 8 sign bits of a
// group from its 7-bit field (the eighth makes the parity even).
func KSignsIQ2XS() []uint8 { return append([]uint8(nil), ksignsIQ2XS[:]...) }
