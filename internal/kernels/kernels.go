// Package kernels owns the hot floating-point kernels of the forward pass:
// dot products and matrix products with f32, f16 and bf16 weights against
// f32 activations, weighted sums of f32, f16 and bf16 rows (attention's V
// accumulation, one or several query heads per pass: AccumRows*, order in
// accum.go), f16 conversion, the normalized fast Walsh–Hadamard transform
// of rows (FWHT, the KV cache's Hadamard rotation; bit-identical to its
// reference loop on every path, see fwht.go), and the element-wise helpers
// (axpy, scale, add, mul, sum of squares, max, exp-and-sum for softmax,
// SiLU·up).
//
// Each kernel has a plain-Go reference implementation (the generic path,
// used on every architecture other than amd64 and on amd64 CPUs without
// AVX2+FMA+F16C) and, on amd64, Go-assembly implementations for AVX2 and
// AVX-512, chosen per call from internal/cpu's level for the float family
// (cpu.SetLevel lets tests and benchmarks force a path).
//
// # Canonical accumulation order and batch invariance
//
// On a given machine and path every f32/f16/bf16 dot product — DotX, each
// output of DotXRows and each output of GemmX — is computed in one
// canonical order, so a matrix product's output is bit-identical to the
// corresponding single dot however many rows and tokens are batched
// together (batch invariance). With L lanes (16 for AVX-512, 8 for AVX2):
//
//  1. One L-lane f32 accumulator, all lanes +0.
//  2. For each block b = 0, 1, ... of L consecutive elements, k ascending:
//     acc[l] = fma(w[b·L+l], x[b·L+l], acc[l]) (weights converted to f32
//     exactly first). The last partial block reads its missing lanes as
//     w = x = 0 (which leaves those lanes unchanged).
//  3. A fixed pairwise tree: halve the vector by adding lane l+L/2 to
//     lane l until one lane is left (16→8→4→2→1 or 8→4→2→1). For L=16,
//     with p[l] = (a[l]+a[l+8]) + (a[l+4]+a[l+12]):
//     result = (p[0]+p[2]) + (p[1]+p[3]).
//
// The matrix products reach their speed without changing this order:
// their register tile holds one such accumulator per output and reduces
// several outputs at once with shuffles that add exactly the same lane
// pairs; packing converts weights to f32 exactly; k is split into panels
// only at multiples of L, with the accumulators parked in memory in
// between. NaN payloads aside, results are bit-identical.
//
// The generic path uses four partial sums s[i mod 4] += w[i]·x[i], k
// ascending, combined as (s0+s1)+(s2+s3); whether each step is fused is up
// to the Go compiler for the target, but Dot, Rows and Gemm share one
// function, so they agree bit for bit there too.
//
// # Weighted sums of rows
//
// AccumRowsX (and the grouped-query AccumRowsXMulti) compute, for each
// output y[d] (of each head) with w(t, d) the row element converted to f32
// exactly: acc = y[d]; for t = 0, 1, ..., n-1: acc = fma(a[t], w(t, d),
// acc); y[d] = acc. On the assembly paths every step is one fused
// multiply-add whatever the length, stride, head count or column, so
// AccumRowsF32/F16 are bit-identical to the loop they replace (Axpy /
// AxpyF16 of each row in turn) and a Multi call to one single call per
// head. The generic path uses the generic Axpy expression y[d] += a[t]·w
// (fused or not as the compiler decides), so the same identities hold
// there. Error against the exact sum, every path:
// ≤ (2n+1)·2⁻²⁴·(|y₀[d]| + Σ_t |a[t]·w(t, d)|).
//
// Matrix products are single-threaded; callers parallelise by splitting
// rows (m) or tokens (n), which cannot change any output.
//
// Lengths are checked in Go before any assembly runs: mismatched slice
// lengths are programming errors and panic.
package kernels

import (
	"fmt"
	"math"

	"github.com/kvserve/kvserve/internal/cpu"
)

// level is the path the kernels run at: internal/cpu's level for the
// float family (AVX2: AVX2, FMA and F16C, 8-lane accumulators; AVX-512:
// F, BW and VL besides, 16 lanes).
func level() cpu.Level { return cpu.Float.Level() }

func mustSameLen(op string, a, b int) {
	if a != b {
		panic(fmt.Sprintf("kernels.%s: length mismatch %d vs %d", op, a, b))
	}
}

// DotF32 returns Σ a[i]·b[i] in the canonical order. len(a) must equal
// len(b). A single dot is one dependent FMA chain (L elements per FMA
// latency); DotF32Rows and GemmF32 get their throughput from several
// independent outputs at once.
func DotF32(a, b []float32) float32 {
	mustSameLen("DotF32", len(a), len(b))
	return dotF32(a, b)
}

// DotF16 returns Σ f16(w[i])·x[i] in the canonical order; w holds IEEE
// binary16 bits. len(w) must equal len(x).
func DotF16(w []uint16, x []float32) float32 {
	mustSameLen("DotF16", len(w), len(x))
	return dotF16(w, x)
}

// DotBF16 returns Σ bf16(w[i])·x[i] in the canonical order; w holds
// bfloat16 bits. len(w) must equal len(x).
func DotBF16(w []uint16, x []float32) float32 {
	mustSameLen("DotBF16", len(w), len(x))
	return dotBF16(w, x)
}

func checkRows(op string, ny, nw, k int) {
	if nw < ny*k {
		panic(fmt.Sprintf("kernels.%s: %d weights for %d rows of %d", op, nw, ny, k))
	}
}

// DotF32Rows sets y[i] = DotF32(w[i*k:(i+1)*k], x) for i < len(y), with
// k = len(x) (matrix-vector product, bit-identical to the single dots; it
// gets its instruction-level parallelism from several rows at once).
func DotF32Rows(y, w, x []float32) {
	checkRows("DotF32Rows", len(y), len(w), len(x))
	dotRows(wF32, wptr(w), len(x), x, y)
}

// DotF16Rows sets y[i] = DotF16(w[i*k:(i+1)*k], x) for i < len(y), k = len(x).
func DotF16Rows(y []float32, w []uint16, x []float32) {
	checkRows("DotF16Rows", len(y), len(w), len(x))
	dotRows(wF16, wptr(w), len(x), x, y)
}

// DotBF16Rows sets y[i] = DotBF16(w[i*k:(i+1)*k], x) for i < len(y), k = len(x).
func DotBF16Rows(y []float32, w []uint16, x []float32) {
	checkRows("DotBF16Rows", len(y), len(w), len(x))
	dotRows(wBF16, wptr(w), len(x), x, y)
}

func checkGemm(op string, m, n, k, nw, nx, ny, ldy int) {
	switch {
	case m < 0 || n < 0 || k < 0:
		panic(fmt.Sprintf("kernels.%s: negative shape m=%d n=%d k=%d", op, m, n, k))
	case nw < m*k:
		panic(fmt.Sprintf("kernels.%s: %d weights for m=%d k=%d", op, nw, m, k))
	case nx < n*k:
		panic(fmt.Sprintf("kernels.%s: %d activations for n=%d k=%d", op, nx, n, k))
	case ldy < m:
		panic(fmt.Sprintf("kernels.%s: ldy=%d < m=%d", op, ldy, m))
	case n > 0 && m > 0 && ny < (n-1)*ldy+m:
		panic(fmt.Sprintf("kernels.%s: %d outputs for n=%d ldy=%d m=%d", op, ny, n, ldy, m))
	}
}

// GemmF32 sets y[j*ldy+i] = DotF32(w[i*k:(i+1)*k], x[j*k:(j+1)*k]) for
// i < m (weight rows) and j < n (tokens); other elements of y are left
// alone. Every output is bit-identical to that DotF32 call (canonical
// order); internally it packs 8 (AVX-512) or 4 (AVX2) weight rows into an
// f32 panel, blocked over k and tokens, and runs an 8×2 (4×2) register
// tile whose accumulators each follow the canonical order. Its scratch
// (48 KiB) comes from a sync.Pool, so steady-state calls do not allocate.
func GemmF32(m, n, k int, w, x, y []float32, ldy int) {
	checkGemm("GemmF32", m, n, k, len(w), len(x), len(y), ldy)
	gemm(wF32, m, n, k, wptr(w), x, y, ldy)
}

// GemmF16 is GemmF32 with f16 weights: each output is bit-identical to
// DotF16(w[i*k:(i+1)*k], x[j*k:(j+1)*k]).
func GemmF16(m, n, k int, w []uint16, x, y []float32, ldy int) {
	checkGemm("GemmF16", m, n, k, len(w), len(x), len(y), ldy)
	gemm(wF16, m, n, k, wptr(w), x, y, ldy)
}

// GemmBF16 is GemmF32 with bf16 weights: each output is bit-identical to
// DotBF16(w[i*k:(i+1)*k], x[j*k:(j+1)*k]).
func GemmBF16(m, n, k int, w []uint16, x, y []float32, ldy int) {
	checkGemm("GemmBF16", m, n, k, len(w), len(x), len(y), ldy)
	gemm(wBF16, m, n, k, wptr(w), x, y, ldy)
}

// F16ToF32 converts binary16 bits to float32 (exact; NaNs come out quiet,
// as the hardware conversion makes them, on every path). len(dst) must
// equal len(src).
func F16ToF32(dst []float32, src []uint16) {
	mustSameLen("F16ToF32", len(dst), len(src))
	f16ToF32(dst, src)
}

// F32ToF16 converts float32 to binary16 bits, rounding to nearest even,
// overflow to ±Inf, NaN to quiet NaN (bit-exact with tensor.F32ToF16 and
// the F16C instruction). len(dst) must equal len(src).
func F32ToF16(dst []uint16, src []float32) {
	mustSameLen("F32ToF16", len(dst), len(src))
	f32ToF16(dst, src)
}

// Axpy sets y[i] += a·x[i]. The assembly paths use one fused multiply-add
// per element (one rounding); the generic path computes a·x[i] + y[i] as
// the Go compiler does for the target (two roundings on amd64, fused on
// arm64). len(x) must equal len(y).
func Axpy(a float32, x, y []float32) {
	mustSameLen("Axpy", len(x), len(y))
	axpy(a, x, y)
}

// AxpyF16 is Axpy with x in binary16 bits.
func AxpyF16(a float32, x []uint16, y []float32) {
	mustSameLen("AxpyF16", len(x), len(y))
	axpyF16(a, x, y)
}

// Scale sets x[i] *= a (exact IEEE product on every path).
func Scale(a float32, x []float32) { scale(a, x) }

// Add sets dst[i] = a[i] + b[i] (exact IEEE sum on every path). dst may
// alias a or b. All lengths must be equal.
func Add(dst, a, b []float32) {
	mustSameLen("Add", len(dst), len(a))
	mustSameLen("Add", len(dst), len(b))
	add(dst, a, b)
}

// Mul sets dst[i] = a[i]·b[i] (exact IEEE product on every path). dst may
// alias a or b. All lengths must be equal.
func Mul(dst, a, b []float32) {
	mustSameLen("Mul", len(dst), len(a))
	mustSameLen("Mul", len(dst), len(b))
	mul(dst, a, b)
}

// SumSquares returns Σ x[i]² (for RMSNorm). Order: on the assembly paths
// four L-lane accumulators take consecutive vectors in turn (fused
// multiply-add), a fifth pass of single vectors and the masked tail go to
// the first, then (a0+a1)+(a2+a3) and the canonical lane tree; generic:
// four partial sums as for DotF32. Deterministic for a given path and length.
func SumSquares(x []float32) float32 { return sumSquares(x) }

// Max returns the largest element of x, or -Inf for an empty x. The result
// for inputs containing NaN is unspecified; for ties between -0 and +0
// either may be returned.
func Max(x []float32) float32 {
	if len(x) == 0 {
		return float32(math.Inf(-1))
	}
	return maxF32(x)
}

// ExpSub sets x[i] = exp(x[i] - m) and returns Σ x[i] (the softmax
// numerator and denominator; pass m = Max(x)). exp is a vectorised
// Cephes-style polynomial with max error below 1 ulp on every path
// (measured over the float32 range by TestExpAccuracy); exp(-Inf) = 0, exp(+Inf) = +Inf, NaN stays NaN.
// The sum uses two L-lane accumulators on the assembly paths
// (alternating vectors, tail into the first, then the lane tree) and a
// sequential sum on the generic path.
func ExpSub(x []float32, m float32) float32 { return expSub(x, m) }

// SiLUMul sets dst[i] = silu(gate[i])·up[i], silu(g) = g/(1+exp(-g)),
// computed as (g·(s/(1+e)))·up with e = exp(-|g|) (the ExpSub exp, so it
// never overflows) and s = e for g < 0, else 1; max error 4 ulp
// (TestSiLUMul). silu(-Inf) gives NaN.
// dst may alias gate or up. All lengths must be equal.
func SiLUMul(dst, gate, up []float32) {
	mustSameLen("SiLUMul", len(dst), len(gate))
	mustSameLen("SiLUMul", len(dst), len(up))
	siluMul(dst, gate, up)
}
