package qkernels

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// TestLanesExtremeScales checks the lane kernels at the ends of their integer
// ranges, where a partial sum held in 16 bits would overflow if the
// kernels' bounds were wrong: every weight quant and scale at its maximum
// (or, for Q6_K's signed scales, minimum), activations all −128 or all
// +127 or alternating per sub-block, compared bit for bit with
// tensor.VecDot on every path.
func TestLanesExtremeScales(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, ty := range []tensor.Type{tensor.Q4_K, tensor.Q6_K, tensor.Q8_0} {
			const M, nsb = 19, 3
			k := nsb * 256
			rs := ty.RowSize(k)
			w := make([]byte, M*rs)
			for i := range w {
				w[i] = 0xff
			}
			for i := 0; i < M; i++ {
				row := w[i*rs : (i+1)*rs]
				for b := 0; b < rs/ty.TypeSize(); b++ {
					blk := row[b*ty.TypeSize() : (b+1)*ty.TypeSize()]
					switch ty {
					case tensor.Q4_K: // d, dmin = 1; scales, mins 63; quants 15
						binary.LittleEndian.PutUint16(blk[0:], 0x3c00)
						binary.LittleEndian.PutUint16(blk[2:], 0x3c00)
					case tensor.Q6_K: // quants 63; scales −128 or 127 by row; d = 1
						for s := 0; s < 16; s++ {
							blk[192+s] = byte(0x80 - i%2)
						}
						binary.LittleEndian.PutUint16(blk[208:], 0x3c00)
					default: // d = 1; quants −1 (0xff) or −128 by row
						binary.LittleEndian.PutUint16(blk[0:], 0x3c00)
						if i%2 == 1 {
							for j := 2; j < 34; j++ {
								blk[j] = 0x80
							}
						}
					}
				}
			}
			vt := ty.VecDotType()
			ldx := vt.RowSize(k)
			for _, pat := range []int{-128, 127, 0} {
				q := make([]int8, k)
				for i := range q {
					switch pat {
					case 0: // alternate per 16 values
						q[i] = 127
						if i/16%2 == 0 {
							q[i] = -128
						}
					default:
						q[i] = int8(pat)
					}
				}
				x := make([]byte, 4*ldx)
				for j := 0; j < 4; j++ {
					extremeActs(vt, x[j*ldx:(j+1)*ldx], q)
				}
				p := make([]byte, PackedSize(ty, M, k))
				Pack(ty, p, w, rs, M, k)
				for nTok := 1; nTok <= 4; nTok++ {
					y := make([]float32, nTok*M)
					GemmPacked(ty, 0, M, nTok, k, p, x, ldx, y, M)
					for j := 0; j < nTok; j++ {
						for i := 0; i < M; i++ {
							want := tensor.VecDot(ty, k, w[i*rs:(i+1)*rs], x[j*ldx:(j+1)*ldx])
							if got := y[j*M+i]; math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("%s pattern %d nTok=%d: y[%d][%d] = %g, VecDot %g", ty, pat, nTok, j, i, got, want)
							}
						}
					}
				}
			}
		}
	})
}

// extremeActs writes the quants q as one row of vec-dot type vt (Q8_K:
// d = 1, with its bsums; Q8_0: d = 1 per block).
func extremeActs(vt tensor.Type, dst []byte, q []int8) {
	switch vt {
	case tensor.Q8_K:
		for b := 0; b < len(q)/256; b++ {
			blk := dst[b*292 : (b+1)*292]
			binary.LittleEndian.PutUint32(blk, math.Float32bits(1))
			for i := 0; i < 256; i++ {
				blk[4+i] = byte(q[b*256+i])
			}
			for s := 0; s < 16; s++ {
				var sum int16
				for i := 0; i < 16; i++ {
					sum += int16(q[b*256+16*s+i])
				}
				binary.LittleEndian.PutUint16(blk[260+2*s:], uint16(sum))
			}
		}
	default:
		for b := 0; b < len(q)/32; b++ {
			blk := dst[b*34 : (b+1)*34]
			binary.LittleEndian.PutUint16(blk, 0x3c00)
			for i := 0; i < 32; i++ {
				blk[2+i] = byte(q[b*32+i])
			}
		}
	}
}
