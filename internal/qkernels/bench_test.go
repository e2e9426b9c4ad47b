package qkernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Benchmarks. The shapes are the 27M test model's FFN: 1408×512.
//
//	go test -run '^$' -bench . -benchtime 2x ./internal/qkernels/
//
// BenchmarkMemRead measures the machine's memory read bandwidth by summing
// a 256 MB buffer (with 256-bit loads where the CPU has AVX2, else eight
// scalar accumulators): the bound for decode-time matrix-vector products
// whose weights do not fit in cache. MemRead16MB is the same on a buffer
// that fits in the last-level cache.
func BenchmarkMemRead(b *testing.B)     { benchRead(b, 256<<20) }
func BenchmarkMemRead16MB(b *testing.B) { benchRead(b, 16<<20) }

func benchRead(b *testing.B, n int) {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i)
	}
	words := unsafe.Slice((*uint64)(unsafe.Pointer(&buf[0])), n/8)
	b.SetBytes(int64(n))
	b.ResetTimer()
	var t uint64
	for i := 0; i < b.N; i++ {
		if s, ok := readBytes(buf); ok {
			t += s
			continue
		}
		var s0, s1, s2, s3, s4, s5, s6, s7 uint64
		for j := 0; j+8 <= len(words); j += 8 {
			v := words[j : j+8 : j+8]
			s0 += v[0]
			s1 += v[1]
			s2 += v[2]
			s3 += v[3]
			s4 += v[4]
			s5 += v[5]
			s6 += v[6]
			s7 += v[7]
		}
		t += s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
	}
	sinkU = t
}

var sinkU uint64

var sink float32

func benchLevels(b *testing.B, f func(b *testing.B)) {
	for _, l := range cpu.Block.Levels() {
		b.Run(l.String(), func(b *testing.B) {
			defer cpu.SetLevel(l)()
			f(b)
		})
	}
}

func benchMatrices(ty tensor.Type, m, nTok, k int) (w, x []byte) {
	r := rand.New(rand.NewPCG(uint64(ty), 1))
	vt := ty.VecDotType()
	w = make([]byte, m*ty.RowSize(k))
	for i := 0; i < m; i++ {
		copy(w[i*ty.RowSize(k):], quantRow(ty, randFloats(r, k, 0.02)))
	}
	x = make([]byte, nTok*vt.RowSize(k))
	for j := 0; j < nTok; j++ {
		copy(x[j*vt.RowSize(k):], quantRow(vt, randFloats(r, k, 1)))
	}
	return w, x
}

// BenchmarkMatVec is the decode-time product: 1408 weight rows of 512
// against one token (Gemm with nTok = 1). Bytes are the weights read.
func BenchmarkMatVec(b *testing.B) {
	const m, k = 1408, 512
	for _, ty := range allTypes {
		b.Run(ty.String(), func(b *testing.B) {
			w, x := benchMatrices(ty, m, 1, k)
			y := make([]float32, m)
			benchLevels(b, func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				for i := 0; i < b.N; i++ {
					Gemm(ty, m, 1, k, w, ty.RowSize(k), x, len(x), y, m)
				}
			})
		})
	}
}

// BenchmarkDot is the same product as 1408 separate Dot calls.
func BenchmarkDot(b *testing.B) {
	const m, k = 1408, 512
	for _, ty := range allTypes {
		b.Run(ty.String(), func(b *testing.B) {
			w, x := benchMatrices(ty, m, 1, k)
			rs := ty.RowSize(k)
			benchLevels(b, func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				var s float32
				for i := 0; i < b.N; i++ {
					for r := 0; r < m; r++ {
						s += Dot(ty, k, w[r*rs:(r+1)*rs], x)
					}
				}
				sink = s
			})
		})
	}
}

// BenchmarkGemm is the prefill product: 1408×512 weights times 512 tokens;
// it reports GOPS (2·m·n·k per second).
func BenchmarkGemm(b *testing.B) {
	const m, nTok, k = 1408, 512, 512
	for _, ty := range allTypes {
		b.Run(ty.String(), func(b *testing.B) {
			w, x := benchMatrices(ty, m, nTok, k)
			y := make([]float32, m*nTok)
			vt := ty.VecDotType()
			benchLevels(b, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					Gemm(ty, m, nTok, k, w, ty.RowSize(k), x, vt.RowSize(k), y, m)
				}
				b.ReportMetric(2*m*nTok*k*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GOPS")
			})
		})
	}
}

// BenchmarkGemmBatch shows how the GEMM scales with the batch size.
func BenchmarkGemmBatch(b *testing.B) {
	const m, k = 1408, 512
	for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q4_K} {
		for _, nTok := range []int{1, 2, 4, 8, 16, 64} {
			b.Run(fmt.Sprintf("%s/n=%d", ty, nTok), func(b *testing.B) {
				w, x := benchMatrices(ty, m, nTok, k)
				y := make([]float32, m*nTok)
				vt := ty.VecDotType()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					Gemm(ty, m, nTok, k, w, ty.RowSize(k), x, vt.RowSize(k), y, m)
				}
				b.ReportMetric(2*m*float64(nTok)*k*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GOPS")
			})
		}
	}
}

// BenchmarkDotRowsAttn is attention scoring over a quantized K cache: one
// query against 4096 cached keys of head dimension 128.
func BenchmarkDotRowsAttn(b *testing.B) {
	const rows = 4096
	for _, ty := range legacyTypes {
		for _, n := range []int{64, 128} {
			b.Run(fmt.Sprintf("%s/d=%d", ty, n), func(b *testing.B) {
				w, x := benchMatrices(ty, rows, 1, n)
				y := make([]float32, rows)
				benchLevels(b, func(b *testing.B) {
					b.SetBytes(int64(len(w)))
					for i := 0; i < b.N; i++ {
						DotRows(ty, n, w, ty.RowSize(n), rows, x, y)
					}
				})
			})
		}
	}
}

// BenchmarkAxpyRowsAttn is the attention value accumulation over a
// quantized V cache: y += Σ a[r]·v_r over 4096 rows of 128.
func BenchmarkAxpyRowsAttn(b *testing.B) {
	const rows = 4096
	for _, ty := range legacyTypes {
		for _, n := range []int{64, 128} {
			b.Run(fmt.Sprintf("%s/d=%d", ty, n), func(b *testing.B) {
				w, _ := benchMatrices(ty, rows, 0, n)
				a := make([]float32, rows)
				for i := range a {
					a[i] = 1 / float32(i+1)
				}
				y := make([]float32, n)
				benchLevels(b, func(b *testing.B) {
					b.SetBytes(int64(len(w)))
					for i := 0; i < b.N; i++ {
						AxpyRows(ty, n, w, ty.RowSize(n), rows, a, y)
					}
				})
			})
		}
	}
}

// BenchmarkQuantize is the activation quantizers on a 4096-value row.
func BenchmarkQuantize(b *testing.B) {
	src := randFloats(rand.New(rand.NewPCG(1, 1)), 4096, 1)
	for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q8_1, tensor.Q8_K} {
		dst := make([]byte, ty.RowSize(len(src)))
		b.Run(ty.String(), func(b *testing.B) {
			benchLevels(b, func(b *testing.B) {
				b.SetBytes(int64(4 * len(src)))
				for i := 0; i < b.N; i++ {
					Quantize(ty, dst, src)
				}
			})
		})
	}
}

// BenchmarkQuantizeKV is the KV-cache quantizers on one head of one token
// (64 or 128 values) and on a page of a 64-wide head (256 tokens, 16384
// values), against tensor.QuantizeRow ("ref"). Bytes are f32 input.
//
//	go test -run '^$' -bench QuantizeKV ./internal/qkernels/
func BenchmarkQuantizeKV(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, ty := range kvTypes {
		for _, n := range []int{64, 128, 16384} {
			src := randFloats(r, n, 1)
			dst := make([]byte, ty.RowSize(n))
			b.Run(fmt.Sprintf("%s/n=%d", ty, n), func(b *testing.B) {
				b.Run("ref", func(b *testing.B) {
					b.SetBytes(int64(4 * n))
					for b.Loop() {
						tensor.QuantizeRow(ty, src, dst)
					}
				})
				benchLevels(b, func(b *testing.B) {
					b.SetBytes(int64(4 * n))
					for b.Loop() {
						Quantize(ty, dst, src)
					}
				})
			})
		}
	}
}
