//go:build amd64

package qkernels

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/cpu/cputest"
	"github.com/kvserve/kvserve/internal/tensor"
)

// mxfp4Rows returns rows MXFP4 rows of n values with random nibbles whose
// scale bytes run through every exponent from 0 (ggml's denormal scales
// 2^-128 and 2^-127 included) to 200, then again.
func mxfp4Rows(r *rand.Rand, rows, n int) []byte {
	b := make([]byte, rows*tensor.MXFP4.RowSize(n))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for blk, e := 0, 0; blk < len(b)/17; blk++ {
		b[17*blk] = byte(e)
		e = (e + 1) % 201
	}
	return b
}

// The assembly unpackers (AVX-512, AVX2) write the canonical rows the Go
// reference unpackRowsMXFP4 writes, byte for byte, for every exponent.
func TestUnpackMXFP4MatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{32, 96, 128, 160, 2880} {
		nb := n / 32
		rs := tensor.MXFP4.RowSize(n)
		const rows = 16
		w := mxfp4Rows(r, rows, n)
		_, _, canB := legacySizes(nb)
		ustride := roundUp(canB, 64)
		run := func(f func(*karg)) []byte {
			can := make([]byte, rows*ustride)
			var a karg
			for i := rows - 1; i >= 0; i-- {
				a.u, a.c1, a.c2 = canonL(can[i*ustride:i*ustride+canB], nb)
			}
			a.w = unsafe.Pointer(&w[0])
			a.stride = rs
			a.rowB = rs
			a.rows = rows
			a.nb = nb
			a.ustride = ustride
			f(&a)
			// Only the blocks' bytes and scales are defined (padding
			// lanes may differ and are never used with nonzero activations).
			var out []byte
			for i := 0; i < rows; i++ {
				row := can[i*ustride:]
				for blk := 0; blk < nb; blk++ {
					g, j := blk/4, blk%4
					out = append(out, row[128*g+16*j:128*g+16*j+16]...)
					out = append(out, row[128*g+64+16*j:128*g+64+16*j+16]...)
				}
				u, _, _ := legacySizes(nb)
				out = append(out, row[u:u+4*nb]...)
			}
			return out
		}
		want := run(unpackRowsMXFP4)
		for _, lv := range cpu.Block.Levels() {
			var got []byte
			switch lv {
			case cpu.AVX512:
				got = run(unpackRowsMXFP4AVX512)
			case cpu.AVX2:
				got = run(unpackRowsMXFP4AVX2)
			default:
				continue
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d: the %s unpacker differs from the Go reference", n, lv)
			}
		}
	}
}

// Decode products (one and two tokens: the matrix-vector kernels) and
// prefill products over MXFP4 rows with every exponent equal the plain-Go
// reference tensor.VecDot bit for bit, on every level, the last row ending
// at a guard page.
func TestMXFP4AllExponents(t *testing.T) {
	cputest.ForLevels(t, cpu.Block, func(t *testing.T, _ cpu.Level) {
		r := rand.New(rand.NewPCG(9, 10))
		vt := tensor.MXFP4.VecDotType()
		for _, n := range []int{32, 128, 160, 2880} {
			rs := tensor.MXFP4.RowSize(n)
			for _, rows := range []int{1, 5, 16, 37} {
				src := mxfp4Rows(r, rows, n)
				w, free := cputest.Guarded(t, len(src))
				copy(w, src)
				for _, nTok := range []int{1, 2, 9} {
					x := make([]byte, nTok*vt.RowSize(n))
					for j := 0; j < nTok; j++ {
						tensor.QuantizeRow(vt, randFloats(r, n, 1), x[j*vt.RowSize(n):(j+1)*vt.RowSize(n)])
					}
					y := make([]float32, nTok*rows)
					Gemm(tensor.MXFP4, rows, nTok, n, w, rs, x, vt.RowSize(n), y, rows)
					for j := 0; j < nTok; j++ {
						xj := x[j*vt.RowSize(n) : (j+1)*vt.RowSize(n)]
						for i := 0; i < rows; i++ {
							want := tensor.VecDot(tensor.MXFP4, n, w[i*rs:(i+1)*rs], xj)
							if got := y[j*rows+i]; !same(got, want) {
								t.Fatalf("n=%d rows=%d nTok=%d: y[%d][%d] = %g, VecDot %g", n, rows, nTok, j, i, got, want)
							}
						}
					}
				}
				free()
			}
		}
	})
}
