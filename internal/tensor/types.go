// Package tensor owns ggml's tensor element types: their names and block
// layouts, conversion between them and float32 (quantize / dequantize,
// bit-exact with ggml's reference code), and the dot-product kernels the
// model's matrix products are built from.
//
// A row of n elements of type t occupies t.RowSize(n) bytes, made of
// n/t.BlockSize() blocks laid out exactly as in ggml.
package tensor

import "fmt"

// Type is a ggml tensor element type; the numeric values are ggml's and
// GGUF's (enum ggml_type).
type Type uint32

const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

type typeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

// info lists every type whose block layout is known, so that GGUF files with
// any of them can at least be parsed and sized. Whether a type can be
// computed with is a separate question (see Quantizable, Dequantizable and
// HasVecDot).
var infoMap = map[Type]typeInfo{
	F32:     {"f32", 1, 4},
	F16:     {"f16", 1, 2},
	Q4_0:    {"q4_0", 32, 18},
	Q4_1:    {"q4_1", 32, 20},
	Q5_0:    {"q5_0", 32, 22},
	Q5_1:    {"q5_1", 32, 24},
	Q8_0:    {"q8_0", 32, 34},
	Q8_1:    {"q8_1", 32, 36},
	Q2_K:    {"q2_K", 256, 84},
	Q3_K:    {"q3_K", 256, 110},
	Q4_K:    {"q4_K", 256, 144},
	Q5_K:    {"q5_K", 256, 176},
	Q6_K:    {"q6_K", 256, 210},
	Q8_K:    {"q8_K", 256, 292},
	IQ2_XXS: {"iq2_xxs", 256, 66},
	IQ2_XS:  {"iq2_xs", 256, 74},
	IQ3_XXS: {"iq3_xxs", 256, 98},
	IQ1_S:   {"iq1_s", 256, 50},
	IQ4_NL:  {"iq4_nl", 32, 18},
	IQ3_S:   {"iq3_s", 256, 110},
	IQ2_S:   {"iq2_s", 256, 82},
	IQ4_XS:  {"iq4_xs", 256, 136},
	I8:      {"i8", 1, 1},
	I16:     {"i16", 1, 2},
	I32:     {"i32", 1, 4},
	I64:     {"i64", 1, 8},
	F64:     {"f64", 1, 8},
	IQ1_M:   {"iq1_m", 256, 56},
	BF16:    {"bf16", 1, 2},
	TQ1_0:   {"tq1_0", 256, 54},
	TQ2_0:   {"tq2_0", 256, 66},
	MXFP4:   {"mxfp4", 32, 17},
}

// info is infoMap as an array indexed by type, for the hot paths (sizes
// are looked up per row).
var info = func() (a [64]typeInfo) {
	for t, i := range infoMap {
		a[t] = i
	}
	return a
}()

func lookup(t Type) (typeInfo, bool) {
	if int(t) >= len(info) || info[t].blockSize == 0 {
		return typeInfo{}, false
	}
	return info[t], true
}

// Known reports whether t is a ggml type whose block layout is known.
func (t Type) Known() bool { _, ok := lookup(t); return ok }

// String returns ggml's name for t (e.g. "q4_K"), or "type(N)" if unknown.
func (t Type) String() string {
	if i, ok := lookup(t); ok {
		return i.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for float types).
func (t Type) BlockSize() int { i, _ := lookup(t); return i.blockSize }

// TypeSize is the number of bytes in one block.
func (t Type) TypeSize() int { i, _ := lookup(t); return i.typeSize }

// RowSize returns the bytes taken by n elements; n must be a multiple of
// the block size (see RowSizeChecked).
func (t Type) RowSize(n int) int {
	i, _ := lookup(t)
	if i.blockSize == 0 {
		return 0
	}
	return n / i.blockSize * i.typeSize
}

// BitsPerValue is the storage cost of one element in bits.
func (t Type) BitsPerValue() float64 {
	i, _ := lookup(t)
	if i.blockSize == 0 {
		return 0
	}
	return float64(i.typeSize*8) / float64(i.blockSize)
}

// RowSizeChecked returns the bytes taken by n elements, or an error if t is
// unknown or n is not a whole number of blocks.
func (t Type) RowSizeChecked(n int) (int, error) {
	i, ok := lookup(t)
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%i.blockSize != 0 {
		return 0, fmt.Errorf("row of %d elements is not a multiple of %s's block size %d", n, i.name, i.blockSize)
	}
	return n / i.blockSize * i.typeSize, nil
}

// ParseType maps a ggml type name (case-insensitive, e.g. "q8_0", "Q4_K",
// "f16") to its Type.
func ParseType(name string) (Type, bool) {
	for t, i := range infoMap {
		if equalFold(i.name, name) {
			return t, true
		}
	}
	return 0, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
