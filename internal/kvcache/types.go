package kvcache

import (
	"fmt"
	"strings"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Types are the cache element types, in llama.cpp's order: the types
// tensor's traits table allows in a cache.
var Types = tensor.TypesFor(tensor.Cache)

// ParseType parses a cache type name, as llama.cpp's -ctk/-ctv accept.
func ParseType(name string) (tensor.Type, error) {
	if t, ok := tensor.ParseType(name); ok && t.Allows(tensor.Cache) {
		return t, nil
	}
	names := make([]string, len(Types))
	for i, c := range Types {
		names[i] = c.String()
	}
	return 0, fmt.Errorf("unknown cache type %q (allowed: %s)", name, strings.Join(names, ", "))
}

// CheckType reports whether t can store heads of headDim elements: it must
// be a cache type whose block divides the head dimension, so no block
// straddles two heads.
func CheckType(t tensor.Type, headDim int) error {
	if !t.Allows(tensor.Cache) {
		_, err := ParseType(t.String())
		return err
	}
	if t.IsCodebook() && !canRotate(headDim) {
		return fmt.Errorf("cache type %s stores Hadamard-rotated heads, which needs a power-of-two head dimension, not %d", t, headDim)
	}
	if headDim%t.BlockSize() != 0 {
		var fit []string
		for _, c := range Types {
			if headDim%c.BlockSize() == 0 {
				fit = append(fit, c.String())
			}
		}
		return fmt.Errorf("cache type %s has blocks of %d values, which do not divide the head dimension %d (types that fit: %s)",
			t, t.BlockSize(), headDim, strings.Join(fit, ", "))
	}
	return nil
}

func isQuantized(t tensor.Type) bool { return t.BlockSize() > 1 }

// pageRotated reports whether a page of type t is stored rotated, the
// cache's rotation setting being rotate: quantized pages when rotation is
// on, codebook pages always (their levels are fitted to rotated rows).
func pageRotated(rotate bool, t tensor.Type, headDim int) bool {
	return (rotate && isQuantized(t) || t.IsCodebook()) && canRotate(headDim)
}

// canRotate reports whether heads of headDim can be Hadamard-rotated.
func canRotate(headDim int) bool { return headDim > 0 && headDim&(headDim-1) == 0 }

// fwht applies the normalized fast Walsh–Hadamard transform in place to x
// (len(x) a power of two). The SIMD kernel is bit-identical to the
// butterflies written out in the tests.
func fwht(x []float32) { kernels.FWHT(x, len(x)) }

// The rotation of quantized pages is the normalized Walsh–Hadamard
// transform H of each head, as llama.cpp applies it: H is orthonormal, so
// q·k = (Hq)·(Hk), and symmetric, so it is its own inverse. (A fixed
// random sign flip before H was tried: on kvtest-27m it changed the KLD of
// q4_0/q5_1/q8_0 caches by -7%/+4%/+13%, no gain, so H alone is used.)

// rotateRows applies the rotation to every row of n elements of x.
func rotateRows(x []float32, n int) { kernels.FWHT(x, n) }

// unrotateRows undoes rotateRows.
func unrotateRows(x []float32, n int) { kernels.FWHT(x, n) }

// Codebook pages are rotated by H·S, S a fixed diagonal of random signs
// (seeded: part of the codebook format, tensor.CodebookVersion): their
// levels assume near-normal rotated values, and the signs keep structured
// rows (a constant offset, one large channel) from landing on a few
// coordinates of H. The other rotated pages use H alone, as llama.cpp.

// codebookSigns are ±1 per channel (1024 covers any power-of-two head
// dimension kvserve accepts: a head of n uses the first n).
var codebookSigns = func() (s [1024]float32) {
	x := uint64(0x6b7673657276651) // splitmix64, fixed seed
	for i := range s {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		s[i] = 1
		if z&1 == 1 {
			s[i] = -1
		}
	}
	return
}()

// CodebookSigns returns a copy of the first n signs (±1) of S, the
// diagonal codebook pages are rotated with (H·S; part of the codebook
// format), for tools that rotate rows as the cache does; nil when n is
// not in 0..1024.
func CodebookSigns(n int) []float32 {
	if n < 0 || n > len(codebookSigns) {
		return nil
	}
	return append([]float32(nil), codebookSigns[:n]...)
}

// signedRotation: whether codebook pages use H·S (else H).
const signedRotation = true

// rotKind is how p's rows are rotated: 0 not, 1 H, 2 H·S.
func (p *Page) rotKind() int {
	switch {
	case !p.Rotated:
		return 0
	case signedRotation && p.Type.IsCodebook():
		return 2
	}
	return 1
}

// rotate applies p's rotation to every row of n elements of x (none for
// a page that is not rotated); unrotate undoes it.
func (p *Page) rotate(x []float32, n int) { rotateKind(p.rotKind(), x, n) }

func (p *Page) unrotate(x []float32, n int) { unrotateKind(p.rotKind(), x, n) }

func rotateKind(k int, x []float32, n int) {
	if k == 2 {
		applySigns(x, n)
	}
	if k > 0 {
		kernels.FWHT(x, n)
	}
}

func unrotateKind(k int, x []float32, n int) {
	if k > 0 {
		kernels.FWHT(x, n)
	}
	if k == 2 {
		applySigns(x, n)
	}
}

func applySigns(x []float32, n int) {
	s := codebookSigns[:n]
	for r := 0; r+n <= len(x); r += n {
		kernels.Mul(x[r:r+n], x[r:r+n], s)
	}
}

// encode converts f32 values to type t into dst (t.RowSize(len(x)) bytes),
// as ggml's reference quantizers write rows into a cache of that type
// (SIMD, bit-identical to the reference). len(x) may span several rows:
// blocks never straddle rows.
func encode(t tensor.Type, x []float32, dst []byte) { ops.Encode(t, dst, x) }

// decodeRow converts a row (or head segment) of type t to f32 (SIMD,
// bit-identical to the reference).
func decodeRow(t tensor.Type, src []byte, dst []float32) { ops.Decode(t, dst, src) }
