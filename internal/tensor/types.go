// Package tensor owns ggml's tensor element types: the traits table
// (traits.go: each type's name, block layout, vec-dot type, uses and
// kernels), conversion between them and float32 (quantize / dequantize,
// bit-exact with ggml's reference code), and the reference dot products
// the kernels are proved against.
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

// Known reports whether t is a ggml type whose block layout is known.
func (t Type) Known() bool { return row(t).BlockSize != 0 }

// String returns ggml's name for t (e.g. "q4_K"), or "type(N)" if unknown.
func (t Type) String() string {
	if r := row(t); r.BlockSize != 0 {
		return r.Name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for float types).
func (t Type) BlockSize() int { return row(t).BlockSize }

// TypeSize is the number of bytes in one block.
func (t Type) TypeSize() int { return row(t).TypeSize }

// RowSize returns the bytes taken by n elements; n must be a multiple of
// the block size (see RowSizeChecked).
func (t Type) RowSize(n int) int {
	r := row(t)
	if r.BlockSize == 0 {
		return 0
	}
	return n / r.BlockSize * r.TypeSize
}

// BitsPerValue is the storage cost of one element in bits.
func (t Type) BitsPerValue() float64 {
	r := row(t)
	if r.BlockSize == 0 {
		return 0
	}
	return float64(r.TypeSize*8) / float64(r.BlockSize)
}

// RowSizeChecked returns the bytes taken by n elements, or an error if t is
// unknown or n is not a whole number of blocks.
func (t Type) RowSizeChecked(n int) (int, error) {
	r := row(t)
	if r.BlockSize == 0 {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%r.BlockSize != 0 {
		return 0, fmt.Errorf("row of %d elements is not a multiple of %s's block size %d", n, r.Name, r.BlockSize)
	}
	return n / r.BlockSize * r.TypeSize, nil
}

// ParseType maps a ggml type name (case-insensitive, e.g. "q8_0", "Q4_K",
// "f16") to its Type.
func ParseType(name string) (Type, bool) {
	for _, r := range table {
		if equalFold(r.Name, name) {
			return r.Type, true
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
