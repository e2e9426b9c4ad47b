package tensor_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

var codebookTypes = []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2}

// TestCodebookLevels: symmetric, ascending, largest 1, one per index.
func TestCodebookLevels(t *testing.T) {
	for _, typ := range codebookTypes {
		L := tensor.CodebookLevels(typ)
		bits := map[tensor.Type]int{tensor.CB4: 4, tensor.CB3: 3, tensor.CB2: 2}[typ]
		if len(L) != 1<<bits || L[len(L)-1] != 1 {
			t.Fatalf("%s: %d levels, largest %g", typ, len(L), L[len(L)-1])
		}
		for i := range L {
			if L[i] != -L[len(L)-1-i] || i > 0 && L[i] <= L[i-1] {
				t.Fatalf("%s: levels %v not symmetric and ascending", typ, L)
			}
		}
		if got := typ.BitsPerValue(); got != map[tensor.Type]float64{tensor.CB4: 4.25, tensor.CB3: 3.25, tensor.CB2: 2.5}[typ] {
			t.Errorf("%s: %g bits per value", typ, got)
		}
	}
}

// TestCodebookRoundTrip: on normal rows each type's relative squared error
// is near its fitted figure; every decoded value is d·L[i] for the block's
// scale; zero and non-finite blocks decode to zero.
func TestCodebookRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	want := map[tensor.Type]float64{tensor.CB4: 0.0070, tensor.CB3: 0.029, tensor.CB2: 0.105}
	const n = 64 * 200
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * 3
	}
	for _, typ := range codebookTypes {
		b := make([]byte, typ.RowSize(n))
		tensor.QuantizeRow(typ, x, b)
		y := make([]float32, n)
		tensor.DequantizeRow(typ, b, y)
		var e, s float64
		for i := range x {
			e += float64((x[i] - y[i]) * (x[i] - y[i]))
			s += float64(x[i] * x[i])
		}
		if rel := e / s; math.Abs(rel-want[typ]) > 0.15*want[typ] {
			t.Errorf("%s: relative squared error %.4f, fitted %.4f", typ, rel, want[typ])
		}
		z := make([]float32, typ.BlockSize())
		z[3] = float32(math.NaN())
		for _, blk := range [][]float32{make([]float32, typ.BlockSize()), z} {
			bb := make([]byte, typ.TypeSize())
			tensor.QuantizeRow(typ, blk, bb)
			out := make([]float32, typ.BlockSize())
			tensor.DequantizeRow(typ, bb, out)
			for _, v := range out {
				if v != 0 {
					t.Fatalf("%s: block %v decodes to %v", typ, blk, out)
				}
			}
		}
	}
}

// TestCodebookLayout pins the byte layouts: a block whose values are the
// levels themselves (scale 1) in a known order.
func TestCodebookLayout(t *testing.T) {
	for _, typ := range codebookTypes {
		L := tensor.CodebookLevels(typ)
		B := typ.BlockSize()
		idx := make([]int, B)
		x := make([]float32, B)
		for i := range x {
			idx[i] = (i*7 + i/5) % len(L)
			x[i] = L[idx[i]]
		}
		x[0], idx[0] = 1, len(L)-1 // amax 1: scale 1 is among those tried
		b := make([]byte, typ.TypeSize())
		tensor.QuantizeRow(typ, x, b)
		if d := tensor.F16ToF32(uint16(b[0]) | uint16(b[1])<<8); d != 1 {
			t.Fatalf("%s: scale %g, want 1", typ, d)
		}
		get := func(i int) int {
			switch typ {
			case tensor.CB4:
				return int(b[2+i%32] >> (4 * (i / 32)) & 15)
			case tensor.CB3:
				return int(b[2+i%16]>>(2*(i/16))&3 | (b[18+i%8]>>(i/8)&1)<<2)
			default:
				return int(b[2+i%8] >> (2 * (i / 8)) & 3)
			}
		}
		for i := range idx {
			if get(i) != idx[i] {
				t.Fatalf("%s: value %d stored as index %d, want %d", typ, i, get(i), idx[i])
			}
		}
	}
}

// TestCodebookScaleModes: on normal rows the scale search lowers the
// squared error against the max-abs scale, and the finer search lowers it
// no further than a little; the mode changes no byte of the format (each
// mode's rows decode as d·L[i]). It logs the relative errors (what the
// search buys per type).
func TestCodebookScaleModes(t *testing.T) {
	defer tensor.SetCodebookScaleMode(tensor.CodebookScaleSearch)
	r := rand.New(rand.NewPCG(5, 6))
	const n = 64 * 400
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, typ := range codebookTypes {
		rel := map[tensor.CodebookScaleMode]float64{}
		for _, name := range []string{"maxabs", "search", "fine"} {
			m, err := tensor.ParseCodebookScaleMode(name)
			if err != nil {
				t.Fatal(err)
			}
			tensor.SetCodebookScaleMode(m)
			b := make([]byte, typ.RowSize(n))
			tensor.QuantizeRow(typ, x, b)
			y := make([]float32, n)
			tensor.DequantizeRow(typ, b, y)
			var e, s float64
			for i := range x {
				e += float64((x[i] - y[i]) * (x[i] - y[i]))
				s += float64(x[i] * x[i])
			}
			rel[m] = e / s
		}
		t.Logf("%s: relative squared error maxabs %.4f, search %.4f, fine %.4f", typ,
			rel[tensor.CodebookScaleMaxAbs], rel[tensor.CodebookScaleSearch], rel[tensor.CodebookScaleFine])
		if !(rel[tensor.CodebookScaleSearch] < rel[tensor.CodebookScaleMaxAbs] && rel[tensor.CodebookScaleFine] <= rel[tensor.CodebookScaleSearch]) {
			t.Errorf("%s: errors not ordered maxabs > search >= fine: %v", typ, rel)
		}
	}
	if _, err := tensor.ParseCodebookScaleMode("best"); err == nil {
		t.Error("ParseCodebookScaleMode accepted \"best\"")
	}
}
