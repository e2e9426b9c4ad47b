//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Data layouts shared by the Go side and the assembly (gen/main.go).
//
// Canonical legacy row (32-element blocks), nb blocks, ng = ⌈nb/4⌉ groups,
// padded to nbP = 16·⌈nb/16⌉ blocks:
//
//	U  [nbP/4 groups][128]byte: group g, bytes 16j+i (i<16): u of element i
//	   of block 4g+j; bytes 64+16j+i: element 16+i. u = q + off, unsigned
//	   (off = 8 for Q4_0, 16 for Q5_0, 128 for Q8_0 and IQ4_NL, 0 for Q4_1
//	   and Q5_1; IQ4_NL's u is its level + 128).
//	DW [nbP]float32 block scales, MW [nbP]float32 block mins (Q4_1, Q5_1);
//	   zero beyond nb.
//
// Prepared legacy activations (Q8_0 / Q8_1 row), same padding:
//
//	X    [nbP/4][128]int8 the quantized values, arranged as U (zero pad)
//	CORR [nbP]int32  -off·Σx of each block, DX [nbP]float32 its d,
//	SX   [nbP]float32 its s (Q8_1).
//
// The dot of the two is then, per block, isum = Σ u·x + CORR exactly.
//
// K-quant canonical row (256-element super-blocks), nsb of them, padded to
// nsbP = 16·⌈nsb/16⌉:
//
//	U  [nsb][256]byte u in natural element order (Q4_K 0..15, Q5_K 0..31,
//	   Q6_K 0..63 with off = 32)
//	SM [nsb][16]int32 Q4_K/Q5_K: the 8 sub-block scales then the 8 mins;
//	   Q6_K: the 16 sub-block scales (signed)
//	D, DMIN [nsbP]float32 d and dmin (zero beyond nsb)
//
// Prepared K activations: the raw Q8_K row is read in place (values at
// 4+292s, d at 292s); P [nsb][8]int32 holds, for Q4_K/Q5_K, the sums of
// bsums pairs (one per 32-element sub-block), and for Q6_K, C6 [nsb][16]
// int32 holds -32·Σx of each 16-element sub-block.

// karg is the argument block of every assembly kernel; the field offsets
// are hard-coded in gen/main.go (TestLayout checks them).
type karg struct {
	w       unsafe.Pointer // 0: first weight row
	stride  int            // 8: bytes between weight rows
	rows    int            // 16: rows to process
	rowB    int            // 24: bytes per weight row
	nb      int            // 32: blocks (32-element) or super-blocks
	u       unsafe.Pointer // 40: canonical U
	c1      unsafe.Pointer // 48: DW | SM
	c2      unsafe.Pointer // 56: MW | D
	c3      unsafe.Pointer // 64: DMIN
	x       unsafe.Pointer // 72: prepared X | raw Q8_K row
	a1      unsafe.Pointer // 80: CORR | P | C6
	a2      unsafe.Pointer // 88: DX
	a3      unsafe.Pointer // 96: SX
	y       unsafe.Pointer // 104: outputs
	ustride int            // 112: bytes between canonical rows
	panel   unsafe.Pointer // 120: GEMM panel
	pack    unsafe.Pointer // 128: GEMM activation pack
	n2      int            // 136: tokens (AVX2 dotCanon)
	ts      int            // 144: token stride of prepared activations
	cstride int            // 152: matrix-vector: bytes between chunks (16 blocks or super-blocks) of a row
	bstride int            // 160: matrix-vector: bytes between batches of 16 rows
}

func isLegacy(t tensor.Type) bool { return t.BlockSize() == 32 }

// actOff is the offset subtracted back from u = q + off.
func actOff(t tensor.Type) int32 {
	switch t {
	case tensor.Q4_0:
		return 8
	case tensor.Q5_0:
		return 16
	case tensor.Q8_0, tensor.IQ4_NL, tensor.MXFP4:
		return 128
	case tensor.Q6_K:
		return 32
	}
	return 0
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// legacy canonical row sizes in bytes: U, DW (= MW) and total.
func legacySizes(nb int) (u, f, total int) {
	nbP := roundUp(nb, 16)
	return nbP * 32, nbP * 4, nbP*32 + 2*nbP*4
}

// kSizes: U, SM, D (= DMIN) and total.
func kSizes(nsb int) (u, sm, f, total int) {
	nsbP := roundUp(nsb, 16)
	return nsb * 256, nsb * 64, nsbP * 4, nsb*256 + nsb*64 + 2*nsbP*4
}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func f32s(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// canonL returns the U, DW and MW pointers of a canonical legacy row
// buffer b (legacySizes) and zeroes the scales beyond nb, which the
// unpackers never write.
func canonL(b []byte, nb int) (pu, pdw, pmw unsafe.Pointer) {
	u, f, _ := legacySizes(nb)
	clear(b[u+4*nb : u+f])
	clear(b[u+f+4*nb : u+2*f])
	pu = ptr(b)
	return pu, unsafe.Add(pu, u), unsafe.Add(pu, u+f)
}

// prepLSize is the size of the prepared legacy activations (X, CORR, DX,
// SX) for nb blocks.
func prepLSize(nb int) int {
	nbP := roundUp(nb, 16)
	return nbP*32 + 3*nbP*4
}

// prepL writes the prepared legacy activations for weight type t from the
// Q8_0/Q8_1 row x (nb blocks) into b (prepLSize(nb) bytes) and returns the
// X, CORR, DX and SX pointers.
func prepL(t tensor.Type, x []byte, nb int, b []byte) (px, pcorr, pdx, psx unsafe.Pointer) {
	nbP := roundUp(nb, 16)
	X := b[:nbP*32]
	corr := b[nbP*32 : nbP*36]
	dx := b[nbP*36 : nbP*40]
	sx := b[nbP*40 : nbP*44]
	a := karg{w: ptr(x), rows: nb, u: ptr(X), c1: ptr(corr), c2: ptr(dx), c3: ptr(sx), n2: int(actOff(t))}
	if t.VecDotType() == tensor.Q8_1 {
		prepQ8_1AVX2(&a)
	} else {
		prepQ8_0AVX2(&a)
	}
	// Padding: blocks nb..nbP-1 of the groups, and the scalars.
	for blk := nb; blk < nbP; blk++ {
		g, j := blk/4, blk%4
		clear(X[128*g+16*j : 128*g+16*j+16])
		clear(X[128*g+64+16*j : 128*g+64+16*j+16])
	}
	clear(corr[4*nb:])
	clear(dx[4*nb:])
	clear(sx[4*nb:])
	return ptr(X), ptr(corr), ptr(dx), ptr(sx)
}

// packL writes the GEMM activation pack for the 8-token tile starting at
// token j0 (tokens beyond nTok are zero): record (b·8+t)·48 holds the raw
// 32 quantized values, corr, dx, sx.
func packL(t tensor.Type, x []byte, ldx, j0, nTok, nb int, b []byte) {
	n := min(8, nTok-j0)
	if n < 8 {
		clear(b[:nb*8*48])
	}
	a := karg{w: ptr(x[j0*ldx:]), stride: ldx, rows: n, nb: nb, u: ptr(b), n2: int(actOff(t))}
	if t.VecDotType() == tensor.Q8_1 {
		packQ8_1AVX2(&a)
	} else {
		packQ8_0AVX2(&a)
	}
}

// canonK returns the U, SM, D and DMIN pointers of a canonical K-quant row
// buffer b (kSizes) and zeroes the padding of D and DMIN.
func canonK(b []byte, nsb int) (pu, psm, pd, pdmin unsafe.Pointer) {
	u, sm, f, _ := kSizes(nsb)
	clear(b[u+sm+4*nsb : u+sm+f])
	clear(b[u+sm+f+4*nsb : u+sm+2*f])
	pu = ptr(b)
	return pu, unsafe.Add(pu, u), unsafe.Add(pu, u+sm), unsafe.Add(pu, u+sm+f)
}

func prepKSize(nsb int) int { return nsb * 64 }

// prepK writes P (Q4_K/Q5_K: sums of bsums pairs) or C6 (Q6_K: -32·Σx per
// 16 values) for the Q8_K row x into b (prepKSize(nsb) bytes).
func prepK(t tensor.Type, x []byte, nsb int, b []byte) {
	a := karg{w: ptr(x), rows: nsb, u: ptr(b)}
	if t == tensor.Q6_K {
		prepK6AVX2(&a)
	} else {
		prepK45AVX2(&a)
	}
}

const packRecK = 336

// packK writes the K GEMM activation pack for the 8-token tile from j0:
// record (s·8+t)·336: qs[256]; Q4_K/Q5_K: the raw bsums[16] at 256 and dx
// at 288; Q6_K: C6[16] at 256 and dx at 320.
func packK(t tensor.Type, x []byte, ldx, j0, nTok, nsb int, b []byte) {
	n := min(8, nTok-j0)
	if n < 8 {
		clear(b[:nsb*8*packRecK])
	}
	a := karg{w: ptr(x[j0*ldx:]), stride: ldx, rows: n, nb: nsb, u: ptr(b)}
	if t == tensor.Q6_K {
		packK6AVX2(&a)
	} else {
		packK45AVX2(&a)
	}
}

// mxfp4U holds MXFP4's canonical u of each 4-bit code: its level + 128.
var mxfp4U = func() (u [16]byte) {
	for i, v := range tensor.KValuesMXFP4() {
		u[i] = byte(int(v) + 128)
	}
	return
}()

// unpackRowsMXFP4 writes the canonical legacy rows (IQ4_NL's form: u =
// level + 128, float32 scales) of a.rows MXFP4 rows, in Go: the
// AVX2/AVX-512 IQ4_NL transposes, GEMM and dot kernels then compute with
// them unchanged (they see only levels and scales).
func unpackRowsMXFP4(a *karg) {
	nb := a.nb
	for r := 0; r < a.rows; r++ {
		w := unsafe.Slice((*byte)(unsafe.Add(a.w, r*a.stride)), nb*17)
		U := unsafe.Slice((*byte)(unsafe.Add(a.u, r*a.ustride)), roundUp(nb, 4)*32)
		DW := unsafe.Slice((*float32)(unsafe.Add(a.c1, r*a.ustride)), nb)
		for b := 0; b < nb; b++ {
			blk := w[17*b : 17*b+17]
			g, j := b/4, b%4
			lo := U[128*g+16*j : 128*g+16*j+16]
			hi := U[128*g+64+16*j : 128*g+64+16*j+16]
			for i, q := range blk[1:17] {
				lo[i] = mxfp4U[q&15]
				hi[i] = mxfp4U[q>>4]
			}
			DW[b] = tensor.E8M0Half(blk[0])
		}
	}
}
