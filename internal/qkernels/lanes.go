package qkernels

import (
	"encoding/binary"
	"math"

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

// laneTypes are the types packed in the row-lane layout.
var laneTypes = map[tensor.Type]bool{tensor.Q8_0: true}

// laneActB is the bytes of one token's prepared block (Q8_0).
const laneActB = 40

// packLanes writes rows [0, m) of the m×k matrix w of a lane type packed
// into dst (16·rowB bytes per group of 16 rows).
func packLanes(t tensor.Type, dst, w []byte, ldw, m, k int) {
	nb := k / 32
	rowB := t.RowSize(k)
	for g := 0; g*16 < m; g++ {
		grp := dst[g*16*rowB : (g+1)*16*rowB]
		sc := grp[nb*512:]
		for r := 0; r < 16; r++ {
			i := 16*g + r
			for b := 0; b < nb; b++ {
				var blk []byte
				if i < m {
					blk = w[i*ldw+b*34 : i*ldw+b*34+34]
					copy(sc[b*32+r*2:b*32+r*2+2], blk[:2])
				} else {
					sc[b*32+r*2], sc[b*32+r*2+1] = 0, 0
				}
				for j := 0; j < 8; j++ {
					o := b*512 + j*64 + r*4
					for q := 0; q < 4; q++ {
						var v byte
						if blk != nil {
							v = blk[2+4*j+q]
						}
						grp[o+q] = v ^ 0x80
					}
				}
			}
		}
	}
}

// unpackLanes copies rows [r0, r0+m) (r0 a multiple of 16) of the lane
// packed matrix p back to row-major rows, rowB bytes apart, in dst.
func unpackLanes(t tensor.Type, k int, p []byte, r0, m int, dst []byte) {
	nb := k / 32
	rowB := t.RowSize(k)
	for ii := 0; ii < m; ii++ {
		i := r0 + ii
		g, r := i/16, i%16
		grp := p[g*16*rowB : (g+1)*16*rowB]
		sc := grp[nb*512:]
		row := dst[ii*rowB : (ii+1)*rowB]
		for b := 0; b < nb; b++ {
			blk := row[b*34 : b*34+34]
			copy(blk[:2], sc[b*32+r*2:])
			for j := 0; j < 8; j++ {
				o := b*512 + j*64 + r*4
				for q := 0; q < 4; q++ {
					blk[2+4*j+q] = grp[o+q] ^ 0x80
				}
			}
		}
	}
}

// prepLanes writes one token's prepared Q8_0 activations (x, nb blocks)
// for the lane kernels into dst (nb·laneActB bytes).
func prepLanes(x []byte, nb int, dst []byte) {
	for b := 0; b < nb; b++ {
		blk := x[b*34 : b*34+34]
		o := dst[b*laneActB : (b+1)*laneActB]
		d := tensor.F16ToF32(binary.LittleEndian.Uint16(blk))
		var s int32
		for _, q := range blk[2:34] {
			s += int32(int8(q))
		}
		binary.LittleEndian.PutUint32(o, math.Float32bits(d))
		binary.LittleEndian.PutUint32(o[4:], uint32(-128*s))
		copy(o[8:40], blk[2:34])
	}
}
