package qkernels

import (
	"encoding/binary"
	"math"

	"github.com/kvserve/kvserve/internal/tensor"
)

// The generic path. Its dot products are tensor.VecDot itself (the
// reference), its quantizers tensor.QuantizeRow; Gemm unpacks each weight
// row once into signed bytes and per-block scales and reuses it for every
// token (gemmGeneric), with the reference's integer sums and float
// operations, so that it equals tensor.VecDot bit for bit.

func dotGeneric(t tensor.Type, n int, w, x []byte) float32 { return tensor.VecDot(t, n, w, x) }

func dotRowsGeneric(t tensor.Type, n int, w []byte, stride, rows int, x []byte, y []float32) {
	rs := t.RowSize(n)
	for r := 0; r < rows; r++ {
		y[r] = tensor.VecDot(t, n, w[r*stride:r*stride+rs], x)
	}
}

func quantGeneric(t tensor.Type, dst []byte, src []float32) { tensor.QuantizeRow(t, src, dst) }

// axpyRowsGeneric dequantizes each row in chunks of 256 elements (one
// K-quant super-block or eight 32-element blocks) with tensor.DequantizeRow
// and adds a·v with two roundings.
func axpyRowsGeneric(t tensor.Type, n int, rows []byte, stride, count int, a []float32, y []float32) {
	// v is pooled scratch, not a stack array: tensor.DequantizeRow calls
	// through the traits table, so its arguments escape.
	s := getScratch()
	defer putScratch(s)
	v := s.floats(256)
	bs := t.BlockSize()
	chunk := 256 / bs * bs
	cb := t.RowSize(chunk)
	for r := 0; r < count; r++ {
		row := rows[r*stride:]
		ar := a[r]
		for i := 0; i < n; i += chunk {
			c := min(chunk, n-i)
			tensor.DequantizeRow(t, row[i/chunk*cb:i/chunk*cb+t.RowSize(c)], v[:c])
			yy := y[i : i+c]
			for j, vj := range v[:c] {
				yy[j] = yy[j] + float32(ar*vj)
			}
		}
	}
}

// ---- generic GEMM: unpack a weight row once, dot it with every token ----

// unpackedRow is one weight row decoded for the generic GEMM: q holds the
// signed integer weights q_j - off (K-quants: 0..31 for Q4_K/Q5_K, q-32
// for Q6_K), f the per-block float factors (binary16 fields converted),
// s the K-quant sub-block scales (and mins).
type unpackedRow struct {
	q []int8
	f []float32
	s []int32
}

func (u *unpackedRow) grow(n, nf, ns int) {
	if cap(u.q) < n {
		u.q = make([]int8, n)
	}
	if cap(u.f) < nf {
		u.f = make([]float32, nf)
	}
	if cap(u.s) < ns {
		u.s = make([]int32, ns)
	}
	u.q, u.f, u.s = u.q[:n], u.f[:nf], u.s[:ns]
}

func f16At(b []byte) float32 { return tensor.F16ToF32(binary.LittleEndian.Uint16(b)) }

var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// unpackGeneric decodes row w (n elements of type t) into u.
func unpackGeneric(t tensor.Type, n int, w []byte, u *unpackedRow) {
	switch t {
	case tensor.Q8_0, tensor.Q4_0, tensor.Q5_0, tensor.IQ4_NL, tensor.Q4_1, tensor.Q5_1:
		nb := n / 32
		bs := t.TypeSize()
		u.grow(n, 2*nb, 0)
		for b := 0; b < nb; b++ {
			blk := w[b*bs : b*bs+bs]
			q := u.q[32*b : 32*b+32]
			u.f[2*b] = f16At(blk)
			switch t {
			case tensor.Q8_0:
				for j := range q {
					q[j] = int8(blk[2+j])
				}
			case tensor.Q4_0:
				for j := 0; j < 16; j++ {
					q[j] = int8(blk[2+j]&15) - 8
					q[j+16] = int8(blk[2+j]>>4) - 8
				}
			case tensor.IQ4_NL:
				for j := 0; j < 16; j++ {
					q[j] = kvaluesIQ4NL[blk[2+j]&15]
					q[j+16] = kvaluesIQ4NL[blk[2+j]>>4]
				}
			case tensor.Q5_0:
				qh := binary.LittleEndian.Uint32(blk[2:])
				for j := 0; j < 16; j++ {
					q[j] = int8(blk[6+j]&15|uint8(qh>>j&1)<<4) - 16
					q[j+16] = int8(blk[6+j]>>4|uint8(qh>>(j+16)&1)<<4) - 16
				}
			case tensor.Q4_1:
				u.f[2*b+1] = f16At(blk[2:])
				for j := 0; j < 16; j++ {
					q[j] = int8(blk[4+j] & 15)
					q[j+16] = int8(blk[4+j] >> 4)
				}
			case tensor.Q5_1:
				u.f[2*b+1] = f16At(blk[2:])
				qh := binary.LittleEndian.Uint32(blk[4:])
				for j := 0; j < 16; j++ {
					q[j] = int8(blk[8+j]&15 | uint8(qh>>j&1)<<4)
					q[j+16] = int8(blk[8+j]>>4 | uint8(qh>>(j+16)&1)<<4)
				}
			}
		}
	case tensor.MXFP4:
		nb := n / 32
		u.grow(n, 2*nb, 0)
		lv := tensor.KValuesMXFP4()
		for b := 0; b < nb; b++ {
			blk := w[b*17 : b*17+17]
			q := u.q[32*b : 32*b+32]
			u.f[2*b] = tensor.E8M0Half(blk[0])
			for j := 0; j < 16; j++ {
				q[j] = lv[blk[1+j]&15]
				q[j+16] = lv[blk[1+j]>>4]
			}
		}
	case tensor.Q4_K, tensor.Q5_K:
		nsb := n / 256
		u.grow(n, 2*nsb, 16*nsb)
		for s := 0; s < nsb; s++ {
			blk := w[s*t.TypeSize():]
			q := u.q[256*s : 256*s+256]
			u.f[2*s] = f16At(blk)
			u.f[2*s+1] = f16At(blk[2:])
			sc := blk[4:16]
			for j := 0; j < 8; j++ {
				s1, m1 := scaleMinK4(j, sc)
				u.s[16*s+j] = int32(s1)
				u.s[16*s+8+j] = int32(m1)
			}
			if t == tensor.Q4_K {
				qs := blk[16:144]
				for c := 0; c < 4; c++ {
					for l := 0; l < 32; l++ {
						v := qs[32*c+l]
						q[64*c+l] = int8(v & 15)
						q[64*c+32+l] = int8(v >> 4)
					}
				}
			} else {
				qh := blk[16:48]
				qs := blk[48:176]
				for c := 0; c < 4; c++ {
					for l := 0; l < 32; l++ {
						v := qs[32*c+l]
						h := qh[l] >> (2 * c)
						q[64*c+l] = int8(v&15 | (h&1)<<4)
						q[64*c+32+l] = int8(v>>4 | (h&2)<<3)
					}
				}
			}
		}
	case tensor.Q6_K:
		nsb := n / 256
		u.grow(n, nsb, 16*nsb)
		for s := 0; s < nsb; s++ {
			blk := w[s*210:]
			q := u.q[256*s : 256*s+256]
			u.f[s] = f16At(blk[208:])
			for j := 0; j < 16; j++ {
				u.s[16*s+j] = int32(int8(blk[192+j]))
			}
			for h := 0; h < 2; h++ {
				ql := blk[64*h : 64*h+64]
				qh := blk[128+32*h : 128+32*h+32]
				for l := 0; l < 32; l++ {
					q[128*h+l] = int8(ql[l]&15|(qh[l]&3)<<4) - 32
					q[128*h+l+32] = int8(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
					q[128*h+l+64] = int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
					q[128*h+l+96] = int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				}
			}
		}
	}
}

// scaleMinK4 is ggml's get_scale_min_k4.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

func idot(a []int8, b []byte) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	for j := 0; j+4 <= len(a); j += 4 {
		s0 += int32(a[j]) * int32(int8(b[j]))
		s1 += int32(a[j+1]) * int32(int8(b[j+1]))
		s2 += int32(a[j+2]) * int32(int8(b[j+2]))
		s3 += int32(a[j+3]) * int32(int8(b[j+3]))
	}
	return s0 + s1 + s2 + s3
}

// dotUnpacked is tensor.VecDot for an unpacked weight row: the same exact
// integer sums and the same float32 operations in the same order.
func dotUnpacked(t tensor.Type, n int, u *unpackedRow, x []byte) float32 {
	var acc float32
	switch t {
	case tensor.Q8_0, tensor.Q4_0, tensor.Q5_0, tensor.IQ4_NL, tensor.MXFP4:
		for b := 0; b < n/32; b++ {
			bx := x[34*b : 34*b+34]
			isum := idot(u.q[32*b:32*b+32], bx[2:34])
			dw, dx := u.f[2*b], f16At(bx)
			switch t {
			case tensor.Q8_0:
				acc += float32(float32(isum) * float32(dw*dx))
			case tensor.Q4_0:
				acc += float32(float32(float32(isum)*dw) * dx)
			case tensor.Q5_0:
				acc += float32(float32(dw*dx) * float32(isum))
			default:
				acc += float32(float32(dx*dw) * float32(isum))
			}
		}
	case tensor.Q4_1, tensor.Q5_1:
		for b := 0; b < n/32; b++ {
			bx := x[36*b : 36*b+36]
			isum := idot(u.q[32*b:32*b+32], bx[4:36])
			dw, mw := u.f[2*b], u.f[2*b+1]
			dx, sx := f16At(bx), f16At(bx[2:])
			acc += float32(float32(float32(dw*dx)*float32(isum)) + float32(mw*sx))
		}
	case tensor.Q4_K, tensor.Q5_K:
		for s := 0; s < n/256; s++ {
			bx := x[292*s : 292*s+292]
			q8 := bx[4:260]
			var isum, imin int32
			for k := 0; k < 8; k++ {
				isum += u.s[16*s+k] * idot(u.q[256*s+32*k:256*s+32*k+32], q8[32*k:32*k+32])
			}
			for i := 0; i < 16; i++ {
				imin += u.s[16*s+8+i/2] * int32(int16(binary.LittleEndian.Uint16(bx[260+2*i:])))
			}
			dx := math.Float32frombits(binary.LittleEndian.Uint32(bx))
			d := u.f[2*s] * dx
			dmin := u.f[2*s+1] * dx
			acc += float32(d * float32(isum))
			acc -= float32(dmin * float32(imin))
		}
	case tensor.Q6_K:
		for s := 0; s < n/256; s++ {
			bx := x[292*s : 292*s+292]
			q8 := bx[4:260]
			var isum int32
			for k := 0; k < 16; k++ {
				isum += u.s[16*s+k] * idot(u.q[256*s+16*k:256*s+16*k+16], q8[16*k:16*k+16])
			}
			d := u.f[s] * math.Float32frombits(binary.LittleEndian.Uint32(bx))
			acc += float32(d * float32(isum))
		}
	}
	return acc
}

func gemmGeneric(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	s := getScratch()
	defer putScratch(s)
	rw, rx := t.RowSize(k), t.VecDotType().RowSize(k)
	if tensor.IsSuperBlock(t) {
		for i := 0; i < m; i++ {
			unpackSuper(t, k, w[i*ldw:i*ldw+rw], &s.ur, &s.sb)
			for j := 0; j < nTok; j++ {
				y[j*ldy+i] = dotSuperUnpacked(t, k, &s.ur, x[j*ldx:j*ldx+rx])
			}
		}
		return
	}
	for i := 0; i < m; i++ {
		unpackGeneric(t, k, w[i*ldw:i*ldw+rw], &s.ur)
		for j := 0; j < nTok; j++ {
			y[j*ldy+i] = dotUnpacked(t, k, &s.ur, x[j*ldx:j*ldx+rx])
		}
	}
}
