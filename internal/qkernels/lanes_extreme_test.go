package qkernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// keepByte reports whether byte o of a block of type t is a float scale
// (or, for Q8_K, a bsum), which the extreme rows keep.
func keepByte(t tensor.Type, o int) bool {
	switch t {
	case tensor.Q8_0:
		return o < 2
	case tensor.Q4_K, tensor.Q5_K:
		return o < 4
	case tensor.Q8_K:
		return o < 4 || o >= 260 // bsums: made consistent below
	case tensor.Q6_K:
		return o >= 208
	}
	return false
}

// extremeRow is rawRow with every quant and scale byte (not the float
// scales) replaced, mostly, by one of 0x00, 0x7f, 0x80, 0xff, or by fill
// if fill ≥ 0: the weights and activations at which the kernels' int16
// pair sums reach their bounds (the AVX2 lane kernels' VPMADDUBSW,
// docs/kernels.md).
func extremeRow(r *rand.Rand, t tensor.Type, n, fill int) []byte {
	b := rawRow(r, t, n)
	ext := []byte{0x00, 0x7f, 0x80, 0xff}
	bs := t.TypeSize()
	for i := range b {
		switch {
		case keepByte(t, i%bs):
		case fill >= 0:
			b[i] = byte(fill)
		case r.IntN(8) != 0:
			b[i] = ext[r.IntN(len(ext))]
		}
	}
	if t == tensor.Q8_K {
		for o := 0; o < len(b); o += bs {
			for g := 0; g < 16; g++ {
				var sum int16
				for _, q := range b[o+4+16*g : o+20+16*g] {
					sum += int16(int8(q))
				}
				binary.LittleEndian.PutUint16(b[o+260+2*g:], uint16(sum))
			}
		}
	}
	return b
}

// TestLanesExtremes checks the lane kernels at every level on weights and
// activations of extreme bytes (all 0x80, all 0xff, mixtures): each output
// bit for bit as tensor.VecDot.
func TestLanesExtremes(t *testing.T) {
	forLaneLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for ty := range laneTypes {
			k := 3 * ty.BlockSize()
			const M = 29
			vt := ty.VecDotType()
			rw, rx := ty.RowSize(k), vt.RowSize(k)
			for trial := 0; trial < 7; trial++ {
				// Trials 0–2: uniform extremes, every pair sum at its bound
				// (Q8_0 0x7f is stored as 0xff, 0x80 as 0x00).
				wf, xf := []int{0x7f, 0xff, 0x80, -1}[min(trial, 3)], []int{0x80, 0x80, 0x80, -1}[min(trial, 3)]
				w := make([]byte, M*rw)
				for i := 0; i < M; i++ {
					copy(w[i*rw:], extremeRow(r, ty, k, wf))
				}
				const nTok = 4
				x := make([]byte, nTok*rx)
				for j := 0; j < nTok; j++ {
					copy(x[j*rx:], extremeRow(r, vt, k, xf))
				}
				p := make([]byte, PackedSize(ty, M, k))
				Pack(ty, p, w, rw, M, k)
				for n := 1; n <= nTok; n++ {
					y := make([]float32, n*M)
					GemmPacked(ty, 0, M, n, k, p, x, rx, y, M)
					for j := 0; j < n; j++ {
						for i := 0; i < M; i++ {
							want := tensor.VecDot(ty, k, w[i*rw:(i+1)*rw], x[j*rx:(j+1)*rx])
							if got := y[j*M+i]; math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("%s trial %d nTok=%d: y[tok %d][row %d] = %g, VecDot %g", ty, trial, n, j, i, got, want)
							}
						}
					}
				}
			}
		}
	})
}

// TestLanesTiles checks GemmPacked of the lane types where a prefill runs
// several tiles of rows and token chunks (more than 64 rows, 6, 11 and
// laneSmallBatch+6 tokens — the last past the small-batch lane path, so
// the types without laneGemm copy back for the GEMM — a partial last
// group), at every level, bit for bit as tensor.VecDot.
func TestLanesTiles(t *testing.T) {
	forLaneLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for ty := range laneTypes {
			k := 2 * ty.BlockSize()
			const M = 150
			vt := ty.VecDotType()
			rw, rx := ty.RowSize(k), vt.RowSize(k)
			w := randMatrix(r, ty, M, k, rw, true, 0)
			p := make([]byte, PackedSize(ty, M, k))
			Pack(ty, p, w, rw, M, k)
			for _, nTok := range []int{6, 11, laneSmallBatch + 6} {
				x := randMatrix(r, vt, nTok, k, rx, false, 1)
				for _, rr := range [][2]int{{0, M}, {16, 133}, {80, 70}} {
					r0, m := rr[0], rr[1]
					ldy := m + 3
					y := make([]float32, (nTok-1)*ldy+m)
					GemmPacked(ty, r0, m, nTok, k, p, x, rx, y, ldy)
					for j := 0; j < nTok; j++ {
						for i := 0; i < m; i++ {
							want := tensor.VecDot(ty, k, w[(r0+i)*rw:(r0+i+1)*rw], x[j*rx:(j+1)*rx])
							if got := y[j*ldy+i]; math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("%s nTok=%d rows %d+%d: y[tok %d][row %d] = %g, VecDot %g", ty, nTok, r0, m, j, i, got, want)
							}
						}
					}
				}
			}
		}
	})
}

func TestSumInt8x32(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	q := make([]byte, 32)
	for trial := 0; trial < 2000; trial++ {
		var want int32
		for i := range q {
			switch trial % 4 {
			case 0:
				q[i] = 0x80
			case 1:
				q[i] = 0x7f
			default:
				q[i] = byte(r.Uint32())
			}
			want += int32(int8(q[i]))
		}
		if got := sumInt8x32(q); got != want {
			t.Fatalf("sumInt8x32(%x) = %d, want %d", q, got, want)
		}
	}
}
