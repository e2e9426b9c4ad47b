// Package deltanet owns the math of Gated DeltaNet layers (Qwen3-Next,
// Qwen3.5): the short causal depthwise convolution with its carried state,
// and the gated delta rule over one head's f32 recurrent state, in two
// forms that compute the same thing — the recurrent form (one token at a
// time, for decoding) and the chunked form (chunks of tokens as small
// matrix products, for prefill), as llama.cpp and the Hugging Face
// reference compute them.
//
// The gated delta rule, per head, for a token with query q and key k (both
// L2-normalised, q also scaled by 1/sqrt(head_dim)), value v, log-decay g
// (≤ 0) and write strength β in (0, 1), over the state S (HeadK rows of
// HeadV values):
//
//	S ← exp(g)·S
//	S ← S + k ⊗ β(v − kᵀS)
//	out = qᵀS
package deltanet

import (
	"math"

	"github.com/kvserve/kvserve/internal/kernels"
)

// Conv runs the causal depthwise convolution of n tokens over ch channels
// with a kernel of K taps, then SiLU: x holds the n input rows ([n][ch],
// row stride ch) and receives the outputs in place; w is the kernel,
// [ch][K] (ggml's ssm_conv1d layout: the K taps of a channel are
// contiguous); state is the last K-1 inputs of each channel before x
// ([ch][K-1], oldest first) and is advanced past x. For channel c and
// token t, out = Σ_i in[t+i]·w[c][i] where in is the state followed by x,
// as ggml_ssm_conv computes it.
func Conv(x []float32, n, ch int, w []float32, K int, state []float32) {
	conv(x, n, ch, w, K, state, true)
}

// ConvLinear is Conv without the SiLU (LFM2's short convolution).
func ConvLinear(x []float32, n, ch int, w []float32, K int, state []float32) {
	conv(x, n, ch, w, K, state, false)
}

func conv(x []float32, n, ch int, w []float32, K int, state []float32, act bool) {
	if K < 1 {
		return
	}
	var buf [16]float32
	win := buf[:0]
	if K > len(buf) {
		win = make([]float32, 0, K)
	}
	win = win[:K]
	for c := 0; c < ch; c++ {
		st := state[c*(K-1) : (c+1)*(K-1)]
		wc := w[c*K : (c+1)*K]
		copy(win, st)
		for t := 0; t < n; t++ {
			xi := &x[t*ch+c]
			win[K-1] = *xi
			var s float32
			for i := 0; i < K; i++ {
				s += win[i] * wc[i]
			}
			if act {
				s = silu(s)
			}
			*xi = s
			copy(win, win[1:])
		}
		copy(st, win[:K-1])
	}
}

func silu(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// L2Norm scales x to unit L2 norm (divided by max(‖x‖, eps), as
// ggml_l2_norm does).
func L2Norm(x []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	n := float32(math.Sqrt(sum))
	kernels.Scale(1/max(n, eps), x)
}

// Step advances one head's state S ([HeadK][HeadV], row-major) by one
// token and writes the head's output (HeadV values) to out: the recurrent
// form. q and k have HeadK values, v HeadV; g is the log-decay and beta
// the write strength (already through their activations). kv is scratch
// of HeadV values.
func Step(S, q, k, v []float32, g, beta float32, out, kv []float32) {
	dk, dv := len(q), len(v)
	S = S[:dk*dv]
	kernels.Scale(float32(math.Exp(float64(g))), S)
	clear(kv[:dv])
	for i := 0; i < dk; i++ {
		kernels.Axpy(k[i], S[i*dv:(i+1)*dv], kv[:dv])
	}
	for j := 0; j < dv; j++ {
		kv[j] = (v[j] - kv[j]) * beta
	}
	for i := 0; i < dk; i++ {
		kernels.Axpy(k[i], kv[:dv], S[i*dv:(i+1)*dv])
	}
	clear(out[:dv])
	for i := 0; i < dk; i++ {
		kernels.Axpy(q[i], S[i*dv:(i+1)*dv], out[:dv])
	}
}

// ChunkSize is the chunk length of the chunked form (llama.cpp's).
const ChunkSize = 64

// Scratch holds the chunked form's buffers for heads of one shape.
type Scratch struct {
	dk, dv    int
	gc, ekc   []float32 // cumulative log-decay in the chunk; exp of it
	T         []float32 // [C][C]: (I − A)⁻¹ of the chunk (lower triangular)
	row       []float32 // [C]
	val, vnew []float32 // [C][dv]
	kcd       []float32 // [C][dk]
	pg, pb    []float32 // PerToken's buffers
}

// PerToken returns two buffers of n values for a head's per-token g and
// β (grown as needed, reused).
func (s *Scratch) PerToken(n int) (g, beta []float32) {
	if cap(s.pg) < n {
		s.pg, s.pb = make([]float32, n), make([]float32, n)
	}
	return s.pg[:n], s.pb[:n]
}

// NewScratch allocates scratch for heads of dk key and dv value dimensions.
func NewScratch(dk, dv int) *Scratch {
	C := ChunkSize
	return &Scratch{dk: dk, dv: dv,
		gc: make([]float32, C), ekc: make([]float32, C), T: make([]float32, C*C), row: make([]float32, C),
		val: make([]float32, C*dv), vnew: make([]float32, C*dv), kcd: make([]float32, C*dk)}
}

// Chunked advances one head's state S ([dk][dv]) by n tokens and writes
// their outputs, the chunked form: within each chunk of ChunkSize tokens
// the delta rule's sequential updates are solved as one triangular system
// (the WY representation), so the work is small matrix products. Token
// t's query is q[t*qs:][:dk], key k[t*ks:][:dk], value v[t*vs:][:dv], its
// output out[t*os:][:dv]; g and beta have one value per token.
func (s *Scratch) Chunked(S []float32, n int, q []float32, qs int, k []float32, ks int, v []float32, vs int,
	g, beta []float32, out []float32, os int) {
	dk, dv := s.dk, s.dv
	for c0 := 0; c0 < n; c0 += ChunkSize {
		m := min(ChunkSize, n-c0)
		s.chunk(S, m, q[c0*qs:], qs, k[c0*ks:], ks, v[c0*vs:], vs, g[c0:], beta[c0:], out[c0*os:], os, dk, dv)
	}
}

func (s *Scratch) chunk(S []float32, m int, q []float32, qs int, k []float32, ks int, v []float32, vs int,
	g, beta []float32, out []float32, os int, dk, dv int) {
	C := ChunkSize
	gc, ekc, T := s.gc[:m], s.ekc[:m], s.T
	var acc float32
	for i := 0; i < m; i++ {
		acc += g[i]
		gc[i] = acc
		ekc[i] = float32(math.Exp(float64(acc)))
	}
	kr := func(i int) []float32 { return k[i*ks : i*ks+dk] }
	// A[i][j] = −β_i (k_i·k_j) exp(gc_i − gc_j) for j < i; then each row
	// i gains Σ_l A[i][l]·T[l][:i] over the rows already solved: T is
	// (I − A)⁻¹ without its diagonal, then the identity is added.
	for i := 0; i < m; i++ {
		Ti := T[i*C : i*C+m]
		clear(Ti)
		row := s.row[:i]
		for j := 0; j < i; j++ {
			row[j] = -beta[i] * kernels.DotF32(kr(i), kr(j)) * float32(math.Exp(float64(gc[i]-gc[j])))
		}
		copy(Ti[:i], row)
		for l := 0; l < i; l++ {
			if row[l] != 0 {
				kernels.Axpy(row[l], T[l*C:l*C+l], Ti[:l])
			}
		}
		Ti[i] = 1
	}
	// value_i = Σ_j T[i][j] β_j v_j; kcd_i = Σ_j T[i][j] β_j exp(gc_j) k_j.
	val, kcd, vnew := s.val[:m*dv], s.kcd[:m*dk], s.vnew[:m*dv]
	for i := 0; i < m; i++ {
		vi, ki := val[i*dv:(i+1)*dv], kcd[i*dk:(i+1)*dk]
		clear(vi)
		clear(ki)
		for j := 0; j <= i; j++ {
			t := T[i*C+j] * beta[j]
			if t == 0 {
				continue
			}
			kernels.Axpy(t, v[j*vs:j*vs+dv], vi)
			kernels.Axpy(t*ekc[j], kr(j), ki)
		}
	}
	// v_new_i = value_i − kcd_iᵀS; out_i = exp(gc_i) q_iᵀS + Σ_{j≤i} (q_i·k_j) exp(gc_i−gc_j) v_new_j.
	for i := 0; i < m; i++ {
		vn := vnew[i*dv : (i+1)*dv]
		copy(vn, val[i*dv:(i+1)*dv])
		ki := kcd[i*dk : (i+1)*dk]
		for a := 0; a < dk; a++ {
			kernels.Axpy(-ki[a], S[a*dv:(a+1)*dv], vn)
		}
	}
	for i := 0; i < m; i++ {
		o := out[i*os : i*os+dv]
		qi := q[i*qs : i*qs+dk]
		clear(o)
		for a := 0; a < dk; a++ {
			kernels.Axpy(qi[a], S[a*dv:(a+1)*dv], o)
		}
		kernels.Scale(ekc[i], o)
		for j := 0; j <= i; j++ {
			w := kernels.DotF32(qi, kr(j)) * float32(math.Exp(float64(gc[i]-gc[j])))
			kernels.Axpy(w, vnew[j*dv:(j+1)*dv], o)
		}
	}
	// S ← exp(gc_last) S + Σ_j exp(gc_last − gc_j) k_j ⊗ v_new_j.
	last := gc[m-1]
	kernels.Scale(ekc[m-1], S[:dk*dv])
	for j := 0; j < m; j++ {
		d := float32(math.Exp(float64(last - gc[j])))
		kj := kr(j)
		vn := vnew[j*dv : (j+1)*dv]
		for a := 0; a < dk; a++ {
			kernels.Axpy(d*kj[a], vn, S[a*dv:(a+1)*dv])
		}
	}
}

// Softplus is log(1+exp(x)), x itself above 20 (as ggml computes it).
func Softplus(x float32) float32 {
	if x > 20 {
		return x
	}
	return float32(math.Log(1 + math.Exp(float64(x))))
}

// Sigmoid is 1/(1+exp(−x)).
func Sigmoid(x float32) float32 { return 1 / (1 + float32(math.Exp(float64(-x)))) }
