package qkernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// superTypes are the low-bit super-block types (tensor.IsSuperBlock).
var superTypes = []tensor.Type{tensor.Q3_K, tensor.Q2_K, tensor.IQ4_XS, tensor.IQ3_S, tensor.IQ3_XXS,
	tensor.IQ2_S, tensor.IQ2_XS, tensor.IQ2_XXS, tensor.IQ1_M, tensor.IQ1_S}

// edgeRow fills a row of type t with the byte pattern fill (every scale,
// level, sign and grid index at an extreme), then gives it finite
// binary16 factors d (and dmin) so that the outputs are comparable.
func edgeRow(t tensor.Type, n int, fill func(i int) byte, d uint16) []byte {
	b := make([]byte, t.RowSize(n))
	for i := range b {
		b[i] = fill(i)
	}
	bs := t.TypeSize()
	for o := 0; o < len(b); o += bs {
		switch t {
		case tensor.Q2_K:
			binary.LittleEndian.PutUint16(b[o+80:], d)
			binary.LittleEndian.PutUint16(b[o+82:], d)
		case tensor.Q3_K:
			binary.LittleEndian.PutUint16(b[o+108:], d)
		case tensor.IQ1_M:
			for i := 0; i < 4; i++ {
				p := o + 48 + 2*i
				v := binary.LittleEndian.Uint16(b[p:])&0x0fff | (d>>(4*i)&15)<<12
				binary.LittleEndian.PutUint16(b[p:], v)
			}
		default:
			binary.LittleEndian.PutUint16(b[o:], d)
		}
	}
	return b
}

// edgeQ8K is a Q8_K row with every value v(i) (bsums consistent or not).
func edgeQ8K(n int, v func(i int) int8, dx float32, bsum int16) []byte {
	x := make([]byte, tensor.Q8_K.RowSize(n))
	for s := 0; s < n/256; s++ {
		bx := x[292*s:]
		binary.LittleEndian.PutUint32(bx, math.Float32bits(dx))
		for i := 0; i < 256; i++ {
			bx[4+i] = byte(v(256*s + i))
		}
		for k := 0; k < 16; k++ {
			binary.LittleEndian.PutUint16(bx[260+2*k:], uint16(bsum))
		}
	}
	return x
}

// TestLowbitEdges checks the super-block types' kernels against
// tensor.VecDot on rows at the extremes: all-zero and all-one bytes (the
// largest and smallest scales, levels and grid indices), alternating
// patterns, activations of ±127 and -128, bsums at the int16 limits, and
// random bytes with huge and tiny factors; on every path, for Dot, DotRows
// and Gemm (1, 3 and 9 tokens).
func TestLowbitEdges(t *testing.T) {
	const n = 512
	fills := map[string]func(int) byte{
		"zero": func(int) byte { return 0 },
		"ones": func(int) byte { return 0xff },
		"aa":   func(int) byte { return 0xaa },
		"55":   func(int) byte { return 0x55 },
		"0f":   func(i int) byte { return byte(0x0f << (4 * (i % 2))) },
		"ramp": func(i int) byte { return byte(i * 37) },
	}
	acts := map[string][]byte{
		"max":  edgeQ8K(n, func(int) int8 { return 127 }, 1, 32767),
		"min":  edgeQ8K(n, func(int) int8 { return -128 }, 1, -32768),
		"alt":  edgeQ8K(n, func(i int) int8 { return int8(127 - 255*(i%2)) }, 0.5, -1),
		"ramp": edgeQ8K(n, func(i int) int8 { return int8(i * 13) }, 3e-3, 1234),
	}
	ds := []uint16{0x3c00, 0x7bff, 0x0001, 0xbc00}
	r := rand.New(rand.NewPCG(5, 6))
	forLevels(t, func(t *testing.T) {
		for _, ty := range superTypes {
			var rows [][]byte
			for _, f := range fills {
				for _, d := range ds {
					rows = append(rows, edgeRow(ty, n, f, d))
				}
			}
			for range 4 {
				rows = append(rows, edgeRow(ty, n, func(int) byte { return byte(r.Uint32()) }, ds[r.IntN(len(ds))]))
			}
			w := make([]byte, 0, len(rows)*ty.RowSize(n))
			for _, row := range rows {
				w = append(w, row...)
			}
			rs := ty.RowSize(n)
			for name, x := range acts {
				for i, row := range rows {
					want := tensor.VecDot(ty, n, row, x)
					if got := Dot(ty, n, row, x); !same(got, want) && !(isNaN(got) && isNaN(want)) {
						t.Fatalf("%s act %s row %d: Dot=%g VecDot=%g", ty, name, i, got, want)
					}
				}
				y := make([]float32, len(rows))
				DotRows(ty, n, w, rs, len(rows), x, y)
				for i, row := range rows {
					want := tensor.VecDot(ty, n, row, x)
					if !same(y[i], want) && !(isNaN(y[i]) && isNaN(want)) {
						t.Fatalf("%s act %s row %d: DotRows=%g VecDot=%g", ty, name, i, y[i], want)
					}
				}
			}
			for _, nTok := range []int{1, 3, 9} {
				var xs []byte
				for j := 0; j < nTok; j++ {
					xs = append(xs, rawRow(r, tensor.Q8_K, n)...)
				}
				checkGemm(t, ty, len(rows), nTok, n, w, rs, xs, tensor.Q8_K.RowSize(n))
			}
		}
	})
}

func isNaN(f float32) bool { return f != f }
