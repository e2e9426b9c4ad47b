package tensor_test

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Benchmarks on one row of 4096 elements. Throughput (MB/s as printed by
// the testing package) counts: for QuantizeRow and DequantizeRow the
// float32 side (16 KiB per row); for VecDot the weight row's bytes.

const benchN = 4096

func benchRow() []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, benchN)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func BenchmarkQuantizeRow(b *testing.B) {
	x := benchRow()
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			dst := make([]byte, typ.RowSize(benchN))
			b.SetBytes(4 * benchN)
			for b.Loop() {
				tensor.QuantizeRow(typ, x, dst)
			}
		})
	}
}

func BenchmarkDequantizeRow(b *testing.B) {
	x := benchRow()
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			q := make([]byte, typ.RowSize(benchN))
			tensor.QuantizeRow(typ, x, q)
			y := make([]float32, benchN)
			b.SetBytes(4 * benchN)
			for b.Loop() {
				tensor.DequantizeRow(typ, q, y)
			}
		})
	}
}

func BenchmarkVecDot(b *testing.B) {
	x := benchRow()
	for _, typ := range dotTypes {
		b.Run(typ.String(), func(b *testing.B) {
			w := make([]byte, typ.RowSize(benchN))
			tensor.QuantizeRow(typ, x, w)
			a := make([]byte, typ.VecDotType().RowSize(benchN))
			tensor.QuantizeRow(typ.VecDotType(), x, a)
			b.SetBytes(int64(len(w)))
			var sink float32
			for b.Loop() {
				sink += tensor.VecDot(typ, benchN, w, a)
			}
			_ = sink
		})
	}
}
