package cbkernels_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/cbkernels"
	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

var types = []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2}

func rows(r *rand.Rand, typ tensor.Type, n, dim, stride int) ([]byte, []float32) {
	b := make([]byte, n*stride)
	dec := make([]float32, n*dim)
	x := make([]float32, dim)
	for i := 0; i < n; i++ {
		for j := range x {
			x[j] = float32(r.NormFloat64()) * float32(1+i%3)
		}
		rb := b[i*stride : i*stride+typ.RowSize(dim)]
		tensor.QuantizeRow(typ, x, rb)
		tensor.DequantizeRow(typ, rb, dec[i*dim:(i+1)*dim])
	}
	return b, dec
}

func same(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %g, reference %g", what, i, got[i], want[i])
		}
	}
}

// forLevels runs f at every CPU level of the float family (the SIMD
// decoders' requirement) and the generic path.
func forLevels(t *testing.T, f func(t *testing.T)) {
	for _, lv := range cpu.Levels() {
		t.Run(lv.String(), func(t *testing.T) {
			defer cpu.SetLevel(lv)()
			f(t)
		})
	}
}

// TestDecode: the decoders (generic and SIMD) equal tensor.DequantizeRow
// bit for bit, on normal rows and on blocks with extreme scales (zero,
// subnormal, largest binary16) and every index.
func TestDecode(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, typ := range types {
			const dim = 256
			b, dec := rows(r, typ, 9, dim, typ.RowSize(dim))
			for i := 0; i < len(b); i += typ.TypeSize() { // scales: every few blocks an extreme one
				switch (i / typ.TypeSize()) % 7 {
				case 1:
					b[i], b[i+1] = 0, 0
				case 2:
					b[i], b[i+1] = 1, 0 // smallest subnormal
				case 3:
					b[i], b[i+1] = 0xff, 0xfb // -65504
				}
				for j := i + 2; j < i+typ.TypeSize(); j++ {
					if (i/typ.TypeSize())%7 == 4 {
						b[j] = byte(r.Uint32())
					}
				}
			}
			tensor.DequantizeRow(typ, b, dec)
			got := make([]float32, len(dec))
			cbkernels.Decode(typ, got, b)
			same(t, typ.String(), got, dec)
		}
	})
}

// TestGemmAndAccum: Gemm and AccumRowsMulti (more rows than a tile, padded
// strides) equal kernels.GemmF32 and kernels.AccumRowsF32Multi over the
// rows decoded by the reference.
func TestGemmAndAccum(t *testing.T) {
	forLevels(t, testGemmAndAccum)
}

func testGemmAndAccum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range types {
		const dim, m, nTok, G, lda = 128, 75, 3, 4, 80
		stride := typ.RowSize(dim) + typ.TypeSize()
		w, dec := rows(r, typ, m, dim, stride)
		x := make([]float32, nTok*dim)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		ldy := m + 2
		y := make([]float32, nTok*ldy)
		want := make([]float32, nTok*ldy)
		cbkernels.Gemm(typ, m, nTok, dim, w, stride, tensor.F32Bytes(x), 4*dim, y, ldy)
		kernels.GemmF32(m, nTok, dim, dec, x, want, ldy)
		same(t, typ.String()+" Gemm", y, want)

		a := make([]float32, G*lda)
		for i := range a {
			a[i] = float32(r.Float64())
		}
		acc := make([]float32, G*dim)
		accWant := make([]float32, G*dim)
		for i := range acc {
			acc[i] = float32(i % 5)
			accWant[i] = acc[i]
		}
		cbkernels.AccumRowsMulti(typ, acc, dim, a, lda, m, w, stride)
		kernels.AccumRowsF32Multi(accWant, dim, a, lda, m, dec, dim)
		same(t, typ.String()+" AccumRowsMulti", acc, accWant)
	}
}

// TestScoreFused: the fused score kernels (up to 8 queries; more go
// through GemmF32) equal kernels.DotF32Rows over the rows decoded by the
// reference, bit for bit, at every CPU level: every query count, head
// dimensions of one to four blocks, padded strides, one row or many, and
// blocks with extreme scales (zero, subnormal, largest binary16) and random
// indices.
func TestScoreFused(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, typ := range types {
			for _, dim := range []int{typ.BlockSize(), 64, 128, 256} {
				for _, m := range []int{1, 7, 40} {
					for nq := 1; nq <= 9; nq++ {
						stride := typ.RowSize(dim) + 3*(m%2)
						w, _ := rows(r, typ, m, dim, stride)
						for i := 0; i < m; i++ {
							rb := w[i*stride : i*stride+typ.RowSize(dim)]
							for b := 0; b < len(rb); b += typ.TypeSize() {
								switch (i + b/typ.TypeSize()) % 9 {
								case 1:
									rb[b], rb[b+1] = 0, 0
								case 2:
									rb[b], rb[b+1] = 1, 0
								case 3:
									rb[b], rb[b+1] = 0xff, 0xfb
								case 4:
									for j := b + 2; j < b+typ.TypeSize(); j++ {
										rb[j] = byte(r.Uint32())
									}
								}
							}
						}
						dec := make([]float32, m*dim)
						for i := 0; i < m; i++ {
							tensor.DequantizeRow(typ, w[i*stride:i*stride+typ.RowSize(dim)], dec[i*dim:(i+1)*dim])
						}
						x := make([]float32, nq*dim)
						for i := range x {
							x[i] = float32(r.NormFloat64())
						}
						ldy := m + 1
						y := make([]float32, nq*ldy)
						want := make([]float32, nq*ldy)
						cbkernels.Gemm(typ, m, nq, dim, w, stride, tensor.F32Bytes(x), 4*dim, y, ldy)
						for j := 0; j < nq; j++ {
							kernels.DotF32Rows(want[j*ldy:j*ldy+m], dec, x[j*dim:(j+1)*dim])
						}
						for i := range want {
							if math.Float32bits(y[i]) != math.Float32bits(want[i]) && !(math.IsNaN(float64(y[i])) && math.IsNaN(float64(want[i]))) {
								t.Fatalf("%s dim %d m %d nq %d: y[%d] = %g, reference %g", typ, dim, m, nq, i, y[i], want[i])
							}
						}
					}
				}
			}
		}
	})
}

// BenchmarkScore: one 256-token page head of 64 values scored against 4
// queries (go test ./internal/cbkernels -bench Score), fused against
// decode-then-DotF32Rows.
func BenchmarkScore(b *testing.B) {
	for _, lv := range cpu.Levels() {
		for _, typ := range types {
			b.Run(lv.String()+"/"+typ.String(), func(b *testing.B) {
				defer cpu.SetLevel(lv)()
				r := rand.New(rand.NewPCG(1, 2))
				src, _ := rows(r, typ, 256, 64, typ.RowSize(64))
				x := make([]float32, 4*64)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				y := make([]float32, 4*256)
				for b.Loop() {
					cbkernels.Gemm(typ, 256, 4, 64, src, typ.RowSize(64), tensor.F32Bytes(x), 4*64, y, 256)
				}
			})
		}
	}
}

// BenchmarkDecode: one 256-token page head of 64 values (go test
// ./internal/cbkernels -bench Decode).
func BenchmarkDecode(b *testing.B) {
	for _, lv := range cpu.Levels() {
		for _, typ := range types {
			b.Run(lv.String()+"/"+typ.String(), func(b *testing.B) {
				defer cpu.SetLevel(lv)()
				r := rand.New(rand.NewPCG(1, 2))
				src, _ := rows(r, typ, 256, 64, typ.RowSize(64))
				dst := make([]float32, 256*64)
				b.SetBytes(int64(len(dst) * 4))
				for b.Loop() {
					cbkernels.Decode(typ, dst, src)
				}
			})
		}
	}
}
