package qkernels

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Row-lane packed weights. For the types in laneTypes, Pack writes a layout
// in which one 64-byte vector holds the same 4 weights of 16 rows — one
// 32-bit lane per row — so that a VPDPBUSD with the activations' 4 bytes
// broadcast to every lane adds those 4 products into each row's own lane:
// the 16 rows' integer block sums come out one per lane, with no
// horizontal sums and no transposition, and the float steps of
// tensor.VecDot (per block, in block order) run on 16 rows at once. One
// pass of the kernel reads each weight once for up to 4 tokens (several
// decoding slots), each token keeping its own accumulators, so every
// output is the same whatever the token count.
//
// Q8_0, per group of 16 rows (rows 16g..16g+15, group size 16·rowB bytes,
// rows past the end are zero), for block b of nb:
//
//	quants: offset b·512 + j·64 + r·4 + i  = byte 4j+i of row r's block b,
//	        stored as w+128 (w XOR 0x80: an unsigned byte for VPDPBUSD)
//	scales: offset nb·512 + b·32 + r·2     = row r's block b binary16 d
//
// The activations are prepared per token and block (40 bytes: dx as
// float32, −128·Σx as int32, the 32 quants), and the kernel computes
// isum = −128·Σx + Σ (w+128)·x = Σ w·x exactly, then
// acc = acc + float32(isum)·(dw·dx) as tensor.VecDot does.

// Q4_K, per group of 16 rows, for super-block s of nsb, a record of 2368
// bytes at s·2368 (16·148: 64 bytes more per group than the file's 16·144,
// for the unpacked 6-bit scales and mins):
//
//	quants: offset 512p + 64j + 4r + i (p, j < 4, 8) = row r's qs[32p+4j+i]
//	        (low nibble: sub-block 2p, high nibble: sub-block 2p+1)
//	scales: offset 2048 + 16k + r = row r's scale of sub-block k (6 bits)
//	mins:   offset 2176 + 16k + r = row r's min of sub-block k (6 bits)
//	d:      offset 2304 + 2r, dmin: offset 2336 + 2r (binary16)
//
// The activations are prepared per token and super-block (296 bytes: dx,
// the 8 sums of pairs of bsums as int32, padding, the 256 quants). The
// kernel runs tensor.VecDot's steps: exact integer sums, then
// acc = acc + (dw·dx)·float32(isum), acc = acc − (dminw·dx)·float32(imin).

// Q6_K, per group of 16 rows, for super-block s, a record of 3360 bytes
// (16·210: no extra bytes) at s·3360. What one kernel step reads is
// contiguous, so the weights are one linear stream: for half h < 2 and
// dword j < 8, the step record at 192(8h+j) holds the 16 rows'
// ql[64h+4j..+4] at +0 ("L1"), ql[64h+32+4j..+4] at +64 ("L2") and
// qh[32h+4j..+4] at +128 (row r's dword at +4r of each); the int8 scales
// at 3072 + 16k + r; d at 3328 + 2r. Prepared activations: 328 bytes per
// super-block (dx, the 16 values −32·bsums[k] as int32, padding, the
// quants); isum = Σ sc_k·(−32·bsums_k + Σ q·x) exactly,
// acc = acc + (dw·dx)·float32(isum).

// Q5_K: see lanes_q5k.go.

// laneTypes are the types packed in the row-lane layout.
var laneTypes = map[tensor.Type]bool{tensor.Q8_0: true, tensor.Q4_K: true, tensor.Q5_K: true, tensor.Q6_K: true}

// laneRec is the bytes of one group of 16 rows per block (super-block),
// laneAct the bytes of one token's prepared block (super-block).
func laneRec(t tensor.Type) int {
	switch t {
	case tensor.Q4_K:
		return 2368
	case tensor.Q5_K:
		return laneRecQ5_K
	case tensor.Q6_K:
		return 3360
	}
	return 544
}

func laneAct(t tensor.Type) int {
	switch t {
	case tensor.Q4_K, tensor.Q5_K:
		return 296
	case tensor.Q6_K:
		return 328
	}
	return 40
}

// laneRowB is a lane-packed row's share of bytes (16 of them make a group).
func laneRowB(t tensor.Type, k int) int { return laneRec(t) / 16 * (k / t.BlockSize()) }

// packLanes writes rows [0, m) of the m×k matrix w of a lane type packed
// into dst (16·laneRowB bytes per group of 16 rows; rows past m zero).
func packLanes(t tensor.Type, dst, w []byte, ldw, m, k int) {
	nb := k / t.BlockSize()
	bb := t.TypeSize()
	gB := 16 * laneRowB(t, k)
	zero := make([]byte, bb)
	for g := 0; g*16 < m; g++ {
		grp := dst[g*gB : (g+1)*gB]
		for r := 0; r < 16; r++ {
			i := 16*g + r
			for b := 0; b < nb; b++ {
				blk := zero
				if i < m {
					blk = w[i*ldw+b*bb : i*ldw+b*bb+bb]
				}
				switch t {
				case tensor.Q4_K:
					packLaneQ4_K(grp[b*2368:(b+1)*2368], r, blk)
				case tensor.Q5_K:
					packLaneQ5_K(grp[b*laneRecQ5_K:(b+1)*laneRecQ5_K], r, blk)
				case tensor.Q6_K:
					laneQ6_K(grp[b*3360:(b+1)*3360], r, blk, true)
				default:
					packLaneQ8_0(grp, nb, b, r, blk)
				}
			}
		}
	}
}

func packLaneQ8_0(grp []byte, nb, b, r int, blk []byte) {
	sc := grp[nb*512:]
	copy(sc[b*32+r*2:b*32+r*2+2], blk[:2])
	scatterDwords(grp[b*512+r*4:], blk[2:34], 8, 64, 0x80808080)
}

func packLaneQ4_K(rec []byte, r int, blk []byte) {
	scatterDwords(rec[4*r:], blk[16:144], 32, 64, 0)
	for k := 0; k < 8; k++ {
		sc, mn := scaleMinK4(k, blk[4:16])
		rec[2048+16*k+r], rec[2176+16*k+r] = sc, mn
	}
	copy(rec[2304+2*r:2304+2*r+2], blk[0:2])
	copy(rec[2336+2*r:2336+2*r+2], blk[2:4])
}

// gatherDwords writes n 4-byte groups of src, stride bytes apart, XOR x,
// one after the other to dst: the copy of one row out of a lane group (the
// prefill GEMM copies every weight back once per micro-batch, so this runs
// without per-byte bounds checks).
func gatherDwords(dst, src []byte, n, stride int, x uint32) {
	if n <= 0 {
		return
	}
	_ = dst[4*n-1]
	_ = src[(n-1)*stride+3]
	d, s := unsafe.Pointer(unsafe.SliceData(dst)), unsafe.Pointer(unsafe.SliceData(src))
	for i := 0; i < n; i++ {
		*(*uint32)(unsafe.Add(d, 4*i)) = *(*uint32)(unsafe.Add(s, i*stride)) ^ x
	}
}

// scatterDwords is gatherDwords' inverse: dst[i·stride:+4] = src[4i:+4] ^ x.
func scatterDwords(dst, src []byte, n, stride int, x uint32) {
	if n <= 0 {
		return
	}
	_ = src[4*n-1]
	_ = dst[(n-1)*stride+3]
	d, s := unsafe.Pointer(unsafe.SliceData(dst)), unsafe.Pointer(unsafe.SliceData(src))
	for i := 0; i < n; i++ {
		*(*uint32)(unsafe.Add(d, i*stride)) = *(*uint32)(unsafe.Add(s, 4*i)) ^ x
	}
}

// laneQ6_K copies row r's Q6_K block blk into the group record rec
// (pack) or back (!pack).
func laneQ6_K(rec []byte, r int, blk []byte, pack bool) {
	// Step record i = 8h+j at 192i: ql dword 16h+j (L1) at +0, ql dword
	// 16h+8+j (L2) at +64, qh dword i at +128.
	if !pack {
		for h := 0; h < 2; h++ {
			gatherDwords(blk[64*h:64*h+32], rec[1536*h+4*r:], 8, 192, 0)
			gatherDwords(blk[64*h+32:64*h+64], rec[1536*h+64+4*r:], 8, 192, 0)
		}
		gatherDwords(blk[128:192], rec[128+4*r:], 16, 192, 0)
		for k := 0; k < 16; k++ {
			blk[192+k] = rec[3072+16*k+r]
		}
		copy(blk[208:210], rec[3328+2*r:])
		return
	}
	for h := 0; h < 2; h++ {
		scatterDwords(rec[1536*h+4*r:], blk[64*h:64*h+32], 8, 192, 0)
		scatterDwords(rec[1536*h+64+4*r:], blk[64*h+32:64*h+64], 8, 192, 0)
	}
	scatterDwords(rec[128+4*r:], blk[128:192], 16, 192, 0)
	for k := 0; k < 16; k++ {
		rec[3072+16*k+r] = blk[192+k]
	}
	copy(rec[3328+2*r:3330+2*r], blk[208:210])
}

// laneSmallBatch is the most tokens for which the AVX-512 path runs every
// lane type's kernels in tiles (gemmLanes) whatever laneGemm says: a small
// batch (a speculative verification pass, a prompt's short last
// micro-batch) cannot repay copying every row back for the GEMM.
// BenchmarkLanesPrefill (8–64 tokens) measures it.
var laneSmallBatch = 64

// unpackLanes copies rows [r0, r0+m) (r0 a multiple of 16) of the lane
// packed matrix p back to the file's row-major rows (t.RowSize(k) bytes
// apart) in dst.
func unpackLanes(t tensor.Type, k int, p []byte, r0, m int, dst []byte) {
	nb := k / t.BlockSize()
	rs, bb := t.RowSize(k), t.TypeSize()
	gB := 16 * laneRowB(t, k)
	for ii := 0; ii < m; ii++ {
		i := r0 + ii
		g, r := i/16, i%16
		grp := p[g*gB : (g+1)*gB]
		row := dst[ii*rs : (ii+1)*rs]
		for b := 0; b < nb; b++ {
			blk := row[b*bb : (b+1)*bb]
			switch t {
			case tensor.Q4_K:
				unpackLaneQ4_K(grp[b*2368:(b+1)*2368], r, blk)
				continue
			case tensor.Q5_K:
				unpackLaneQ5_K(grp[b*laneRecQ5_K:(b+1)*laneRecQ5_K], r, blk)
				continue
			case tensor.Q6_K:
				laneQ6_K(grp[b*3360:(b+1)*3360], r, blk, false)
				continue
			}
			copy(blk[:2], grp[nb*512+b*32+r*2:])
			gatherDwords(blk[2:34], grp[b*512+r*4:], 8, 64, 0x80808080)
		}
	}
}

func unpackLaneQ4_K(rec []byte, r int, blk []byte) {
	gatherDwords(blk[16:144], rec[4*r:], 32, 64, 0)
	var ls, lm [8]uint8
	for k := 0; k < 8; k++ {
		ls[k], lm[k] = rec[2048+16*k+r], rec[2176+16*k+r]
	}
	s := blk[4:16]
	clear(s)
	for j := 0; j < 8; j++ { // ggml's packing of the 6-bit scales and mins
		if j < 4 {
			s[j] = ls[j]
			s[j+4] = lm[j]
		} else {
			s[j+4] = ls[j]&0x0f | (lm[j]&0x0f)<<4
			s[j-4] |= (ls[j] >> 4) << 6
			s[j] |= (lm[j] >> 4) << 6
		}
	}
	copy(blk[0:2], rec[2304+2*r:])
	copy(blk[2:4], rec[2336+2*r:])
}

// sumInt8x32 is the sum of the 32 int8 values in q, 8 at a time: the
// unsigned sum of each word's bytes (pairs added in 16-bit lanes, then the
// lanes by a multiply) minus 256 per byte with the sign bit set.
func sumInt8x32(q []byte) int32 {
	const lo, sign = 0x00ff00ff00ff00ff, 0x8080808080808080
	_ = q[31]
	var t uint64
	neg := 0
	for i := 0; i < 32; i += 8 {
		v := binary.LittleEndian.Uint64(q[i:])
		t += v&lo + v>>8&lo
		neg += bits.OnesCount64(v & sign)
	}
	return int32(t*0x0001000100010001>>48) - 256*int32(neg)
}

// prepLanes writes one token's prepared activations (x: nb blocks of the
// vec-dot type) for the lane kernels into dst (nb·laneAct bytes).
func prepLanes(t tensor.Type, x []byte, nb int, dst []byte) {
	if t == tensor.Q6_K {
		for b := 0; b < nb; b++ {
			blk := x[b*292 : b*292+292]
			o := dst[b*328 : (b+1)*328]
			copy(o[0:4], blk[0:4])
			for k := 0; k < 16; k++ {
				s := -32 * int32(int16(binary.LittleEndian.Uint16(blk[260+2*k:])))
				binary.LittleEndian.PutUint32(o[4+4*k:], uint32(s))
			}
			clear(o[68:72])
			copy(o[72:328], blk[4:260])
		}
		return
	}
	if t == tensor.Q4_K || t == tensor.Q5_K {
		for b := 0; b < nb; b++ {
			blk := x[b*292 : b*292+292]
			o := dst[b*296 : (b+1)*296]
			copy(o[0:4], blk[0:4])
			for k := 0; k < 8; k++ {
				s := int32(int16(binary.LittleEndian.Uint16(blk[260+4*k:]))) + int32(int16(binary.LittleEndian.Uint16(blk[262+4*k:])))
				binary.LittleEndian.PutUint32(o[4+4*k:], uint32(s))
			}
			clear(o[36:40])
			copy(o[40:296], blk[4:260])
		}
		return
	}
	for b := 0; b < nb; b++ {
		blk := x[b*34 : b*34+34]
		o := dst[b*40 : (b+1)*40]
		d := tensor.F16ToF32(binary.LittleEndian.Uint16(blk))
		s := sumInt8x32(blk[2:34])
		binary.LittleEndian.PutUint32(o, math.Float32bits(d))
		binary.LittleEndian.PutUint32(o[4:], uint32(-128*s))
		copy(o[8:40], blk[2:34])
	}
}
