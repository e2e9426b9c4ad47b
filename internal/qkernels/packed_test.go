package qkernels

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// TestGemmPacked checks, on every path, that GemmPacked over a packed matrix
// gives each output bit for bit as tensor.VecDot of the row-major row (and
// so as Gemm): several row ranges (a first row of 0 or 16, partial batches
// of 16), token counts on both sides of the matrix-vector / GEMM switch,
// and row lengths of one partial chunk, one chunk and several chunks.
func TestGemmPacked(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, ty := range allTypes {
			if !packTypes[ty] {
				if CanPack(ty, 256*16) {
					t.Errorf("CanPack(%s) = true for a type without packed kernels", ty)
				}
				continue
			}
			t.Run(ty.String(), func(t *testing.T) {
				ks := []int{160, 512, 1024, 2048}
				if laneTypes[ty] {
					ks = []int{32, 96, 160, 544, 2048} // any row length
				}
				if ty.BlockSize() == 256 {
					ks = []int{256, 2048, 4096, 8192}
					if laneTypes[ty] {
						ks = []int{256, 768, 2048, 4352} // any row length
					}
				}
				vt := ty.VecDotType()
				for _, k := range ks {
					if !CanPack(ty, k) {
						t.Fatalf("CanPack(%s, %d) = false", ty, k)
					}
					const M = 53
					ldw := ty.RowSize(k) + r.IntN(2)*ty.TypeSize()
					w := randMatrix(r, ty, M, k, ldw, r.IntN(2) == 0, 0.02)
					p := make([]byte, PackedSize(ty, M, k))
					for i := range p {
						p[i] = 0xA5 // Pack must write every byte
					}
					Pack(ty, p, w, ldw, M, k)
					for _, nTok := range []int{1, 2, 3, 4, 5, 9} {
						ldx := vt.RowSize(k)
						x := randMatrix(r, vt, nTok, k, ldx, false, 1)
						for _, rr := range [][2]int{{0, M}, {16, 37}, {48, 5}, {0, 16}} {
							r0, m := rr[0], rr[1]
							ldy := m + 2
							y := make([]float32, (nTok-1)*ldy+m)
							GemmPacked(ty, r0, m, nTok, k, p, x, ldx, y, ldy)
							rw := ty.RowSize(k)
							for j := 0; j < nTok; j++ {
								for i := 0; i < m; i++ {
									want := tensor.VecDot(ty, k, w[(r0+i)*ldw:(r0+i)*ldw+rw], x[j*ldx:j*ldx+ldx])
									if got := y[j*ldy+i]; math.Float32bits(got) != math.Float32bits(want) {
										t.Fatalf("%s k=%d nTok=%d rows %d+%d: y[tok %d][row %d] = %g, VecDot %g", ty, k, nTok, r0, m, j, i, got, want)
									}
								}
							}
						}
					}
					// Padding rows are zero.
					rowB := ty.RowSize(k)
					pad := make([]byte, 11*rowB)
					tail := make([]byte, 16*rowB)
					unpackPacked(ty, k, p, 48, 16, tail)
					for i, b := range tail[5*rowB:] {
						if b != pad[i] {
							t.Fatalf("%s k=%d: padding byte %d is %#x", ty, k, i, b)
						}
					}
					// The copy back gives the file's rows (the prefill GEMM's input).
					back := make([]byte, 48*rowB)
					unpackPacked(ty, k, p, 0, 48, back)
					back = append(back, tail[:5*rowB]...)
					for i := 0; i < M; i++ {
						if !bytes.Equal(back[i*rowB:(i+1)*rowB], w[i*ldw:i*ldw+rowB]) {
							t.Fatalf("%s k=%d: row %d copied back differs from the packed row", ty, k, i)
						}
					}
				}
			})
		}
	})
}

func TestCanPack(t *testing.T) {
	for _, c := range []struct {
		ty   tensor.Type
		k    int
		want bool
	}{
		{tensor.Q8_0, 128, true}, // row-lane layout: any row length
		{tensor.Q8_0, 160, true},
		{tensor.Q8_0, 512, true},
		{tensor.Q8_0, 544, true},
		{tensor.Q4_0, 128, false}, // 4 blocks: the short-row kernel
		{tensor.Q4_0, 544, false}, // 17 blocks: a padded chunk
		{tensor.Q8_0, 2048, true},
		{tensor.Q4_K, 256, true},
		{tensor.Q4_K, 4352, true},  // row-lane layout: any row length
		{tensor.Q5_K, 4352, true},  // row-lane layout: any row length
		{tensor.Q6_K, 14336, true}, // row-lane layout: 56 super-blocks
		{tensor.Q6_K, 8192, true},
		{tensor.F16, 2048, false},
		{tensor.Q8_0, 100, false},
	} {
		if got := CanPack(c.ty, c.k); got != c.want {
			t.Errorf("CanPack(%s, %d) = %v, want %v", c.ty, c.k, got, c.want)
		}
	}
}
