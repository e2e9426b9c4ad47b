package model

import (
	"fmt"
	"github.com/kvserve/kvserve/internal/attn"
	"math"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/parallel"
)

// KV is the model's view of a KV cache. Rows are in [kv_head][head_dim]
// layout, K already rotated by RoPE.
type KV interface {
	// Store records the K and V rows of the token at position pos of
	// sequence seq in layer layer.
	Store(layer, seq, pos int, k, v []float32)
	// AttendRun computes attention for nTok consecutive tokens of seq at
	// positions pos0, pos0+1, ...: for token i, the g query heads that
	// share KV head kvHead are q[i*qStride:][:g*HeadDim] (already scaled
	// by 1/sqrt(HeadDim)); it computes softmax(q·K)·V over positions
	// 0..pos0+i and writes g rows of HeadDimV to out[i*outStride:]. Each
	// token's result must not depend on the run it is part of. worker
	// (0..threads-1) identifies the calling thread for scratch use.
	AttendRun(layer, seq, pos0, nTok, kvHead, g int, q []float32, qStride int, out []float32, outStride int, worker int)
	// Release lets the cache drop what no later token of seq can attend
	// (sliding-window layers); called after each batch.
	Release(seq int)
}

// QueryObserver is an optional interface of a KV: the forward pass hands
// it each token's queries (NHead × HeadDim, RoPE'd and scaled as attention
// uses them) just before storing the token's K and V (in token order), so
// a cache can fit its key encoding to the queries (kvcache.Config.KeyQuery).
type QueryObserver interface {
	ObserveQuery(layer, seq, pos int, q []float32)
}

// MaxRun is the most tokens the forward pass hands AttendRun at once.
const MaxRun = attn.MaxRun

// Batch is a set of tokens to process in one forward pass. Tokens may
// belong to different sequences; within a sequence, positions must be
// new (not yet stored) and every earlier position must already be stored
// or be in this batch.
type Batch struct {
	Tokens []int
	Pos    []int
	Seq    []int  // cache sequence of each token (nil: all 0)
	Output []bool // which tokens need logits (nil: only the last)
	// Embeddings asks for the output-normed hidden states of the output
	// tokens (NEmbd values each, what llama.cpp calls result_norm) instead
	// of their logits: the output head is not run.
	Embeddings bool
	// Lora, when set, holds each token's LoRA adapter scales, indexed by
	// adapter in attach order (a missing adapter: 0); a nil entry (or a
	// nil Lora) uses the adapters' own scales (Lora.SetScale). It lets
	// requests with different adapters share a batch.
	Lora [][]float32
}

// temperature is the query factor of attention temperature scaling at pos.
func (c *Config) temperature(pos int) float32 {
	return float32(1 + float64(c.TempScale)*math.Log(math.Floor(float64(pos)/float64(c.TempFloor))+1))
}

// Runner holds the scratch buffers of forward passes of up to MaxBatch
// tokens. It is not safe for concurrent use; one Runner serves one
// scheduler.
type Runner struct {
	M        *Model
	MaxBatch int
	pool     *parallel.Pool

	x, xn, q, k, v, attn, gate, up []float32
	rope                           [][]float32 // per RoPE set, per token: cos, sin interleaved, Dim/2 pairs
	invFreq                        [][]float64 // per RoPE set
	shiftCS                        []float32   // ReRope's cos/sin
	logits                         []float32
	outRows                        []int
	outLora                        [][]float32 // Batch.Lora of the output rows
	runs                           [][2]int    // (first token, length) of runs of consecutive positions
	ckpt                           []bool      // per run: checkpoint the recurrent state after it (hybrid models)

	moe  *moeScratch    // mixture-of-experts buffers (nil for dense models)
	hy   *hybridScratch // recurrent layers' buffers (nil unless hybrid)
	qg   []float32      // gated attention: attn_q's output (query and gate per head)
	agt  []float32      // gated attention: the gates, [token][NHead*HeadDimV]
	mm   matmuls
	attT attnTask
	ropT ropeTask
}

// NewRunner allocates scratch for batches of up to maxBatch tokens.
func NewRunner(m *Model, pool *parallel.Pool, maxBatch int) *Runner {
	c := &m.Config
	r := &Runner{M: m, MaxBatch: maxBatch, pool: pool}
	r.x = make([]float32, maxBatch*c.NEmbd)
	r.xn = make([]float32, maxBatch*max(c.NEmbd, c.NHead*c.HeadDimV))
	r.q = make([]float32, maxBatch*c.NHead*c.HeadDim)
	r.k = make([]float32, maxBatch*c.NHeadKV*c.HeadDim)
	r.v = make([]float32, maxBatch*c.NHeadKV*c.HeadDimV)
	r.attn = make([]float32, maxBatch*c.NHead*c.HeadDimV)
	if m.Architecture.MoE {
		r.moe = newMoeScratch(c, maxBatch)
	} else {
		r.gate = make([]float32, maxBatch*c.NFF)
		r.up = make([]float32, maxBatch*c.NFF)
	}
	if c.Recurrent != nil {
		r.hy = newHybridScratch(c, maxBatch, pool.Threads())
	}
	if m.Architecture.AttnGate {
		r.qg = make([]float32, maxBatch*2*c.NHead*c.HeadDim)
		r.agt = make([]float32, maxBatch*c.NHead*c.HeadDimV)
	}
	for i := range c.Ropes {
		r.rope = append(r.rope, make([]float32, maxBatch*c.Ropes[i].Dim))
	}
	r.shiftCS = make([]float32, c.HeadDim)
	r.SetContext(c.NCtxTrain)
	r.mm.pool = pool
	r.attT.r = r
	r.ropT.r = r
	return r
}

// SetContext tells the runner the context it serves (tokens per
// sequence), which selects LongRoPE's long factors when it exceeds the
// model's original context and the short ones otherwise, as llama.cpp does.
// A new runner assumes the model's training context.
func (r *Runner) SetContext(ctx int) {
	m := r.M
	r.invFreq = r.invFreq[:0]
	for i := range m.Ropes {
		factors := m.RopeFreqs
		if factors == nil && m.RopeLong != nil {
			factors = m.RopeShort
			orig := m.Ropes[0].Scaling.OrigCtx
			if orig == 0 {
				orig = m.NCtxTrain
			}
			if ctx > orig {
				factors = m.RopeLong
			}
		}
		if i > 0 && len(m.Ropes) > 1 {
			factors = nil // sliding-window layers' own RoPE has no factors
		}
		r.invFreq = append(r.invFreq, ropeInvFreq(&m.Ropes[i], factors))
	}
}

// Forward runs the batch through the model, storing every token's K and V
// in kv, and returns the logits of the tokens marked in b.Output (or of
// the last token), NVocab values each, in batch order (with b.Embeddings,
// their normed hidden states, NEmbd values each). The returned slice is
// reused by the next call.
func (r *Runner) Forward(b *Batch, kv KV) ([]float32, error) {
	m := r.M
	c := &m.Config
	n := len(b.Tokens)
	if n == 0 || n > r.MaxBatch {
		return nil, fmt.Errorf("batch of %d tokens (1 to %d allowed)", n, r.MaxBatch)
	}
	if len(b.Pos) != n || (b.Seq != nil && len(b.Seq) != n) || (b.Output != nil && len(b.Output) != n) || (b.Lora != nil && len(b.Lora) != n) {
		return nil, fmt.Errorf("batch fields have inconsistent lengths")
	}
	for i, t := range b.Tokens {
		if t < 0 || t >= c.NVocab {
			return nil, fmt.Errorf("token id %d out of range (vocabulary of %d)", t, c.NVocab)
		}
		if b.Pos[i] < 0 {
			return nil, fmt.Errorf("negative position %d", b.Pos[i])
		}
	}
	E := c.NEmbd
	x := r.x[:n*E]
	for i, t := range b.Tokens {
		dequantRow(m.TokEmbd, t, x[i*E:(i+1)*E])
	}
	if c.EmbedScale != 0 {
		kernels.Scale(c.EmbedScale, x)
	}
	r.attT.b, r.attT.kv = b, kv
	r.mm.lora = b.Lora // per-token adapter scales (nil: the adapters')
	defer func() { r.mm.lora = nil }()
	r.runs, r.ckpt = r.runs[:0], r.ckpt[:0]
	// Hybrid models with state checkpoints: runs also end at page
	// boundaries, and a sequence's last run in the batch leaves its last
	// token alone, so that the state is checkpointed there and before the
	// last token (a prompt sent again, or continued, resumes from it with
	// the last token re-evaluated for its logits).
	every := 0
	if skv, ok := kv.(StateKV); ok && c.Recurrent != nil {
		every = skv.CheckpointEvery()
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && j-i < MaxRun && seqOf(b, j) == seqOf(b, i) && b.Pos[j] == b.Pos[j-1]+1 && (every == 0 || b.Pos[j]%every != 0) {
			j++
		}
		if every > 0 && j-i >= 2 && lastRunOf(b, i, j) {
			r.runs, r.ckpt = append(r.runs, [2]int{i, j - 1 - i}), append(r.ckpt, true)
			i = j - 1
		}
		r.runs = append(r.runs, [2]int{i, j - i})
		r.ckpt = append(r.ckpt, every > 0 && (b.Pos[j-1]+1)%every == 0)
		i = j
	}
	var skv StateKV
	if c.Recurrent != nil {
		var err error
		if skv, err = r.checkState(b, kv); err != nil {
			return nil, err
		}
	}
	r.ropT.b = b
	r.ropT.n = n
	r.pool.Run(n, &r.ropT) // cos/sin tables per token

	qDim, kvDim, vDim := c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim, c.NHeadKV*c.HeadDimV
	xn := r.xn[:n*E]
	q, k, v := r.q[:n*qDim], r.k[:n*kvDim], r.v[:n*vDim]
	attn := r.attn[:n*c.NHead*c.HeadDimV]
	var gate, up []float32
	if r.gate != nil {
		gate, up = r.gate[:n*c.NFF], r.up[:n*c.NFF]
	}
	for l := range m.Layers {
		L := &m.Layers[l]
		rmsNormRows(xn, x, L.AttnNorm, E, c.NormEps)
		if c.IsRecurrent(l) {
			if c.SSM.ShortConv {
				r.shortConv(l, L, b, xn, n, skv)
			} else {
				r.deltaNet(l, L, b, xn, n, skv)
			}
			addInPlace(x, xn)
			r.ffn(L, x, xn, gate, up, n)
			continue
		}
		r.mm.reset(n)
		if r.qg != nil {
			r.mm.add(L.Wq, xn, r.qg[:n*2*qDim], 2*qDim)
		} else {
			r.mm.add(L.Wq, xn, q, qDim)
		}
		r.mm.add(L.Wk, xn, k, kvDim)
		r.mm.add(L.Wv, xn, v, vDim)
		r.mm.run()
		if r.qg != nil {
			r.splitGate(q, n)
		}
		addBias(q, L.Bq)
		addBias(k, L.Bk)
		addBias(v, L.Bv)
		if L.QNorm != nil {
			rmsNormRows(q, q, L.QNorm, c.HeadDim, c.NormEps)
			rmsNormRows(k, k, L.KNorm, c.HeadDim, c.NormEps)
		}
		set := c.ropeOf(l)
		r.applyRope(q, c.NHead, n, set)
		r.applyRope(k, c.NHeadKV, n, set)
		kernels.Scale(c.AttnScale, q)
		if c.TempScale != 0 {
			for i := 0; i < n; i++ {
				kernels.Scale(c.temperature(b.Pos[i]), q[i*qDim:(i+1)*qDim])
			}
		}
		qo, _ := kv.(QueryObserver)
		for i := 0; i < n; i++ {
			if qo != nil {
				qo.ObserveQuery(l, seqOf(b, i), b.Pos[i], q[i*qDim:(i+1)*qDim])
			}
			kv.Store(l, seqOf(b, i), b.Pos[i], k[i*kvDim:(i+1)*kvDim], v[i*vDim:(i+1)*vDim])
		}
		r.attT.layer = l
		r.pool.Run(len(r.runs)*c.NHeadKV, &r.attT)
		if r.qg != nil {
			a := attn[:n*c.NHead*c.HeadDimV]
			for i, g := range r.agt[:len(a)] {
				a[i] *= 1 / (1 + float32(math.Exp(float64(-g))))
			}
		}
		r.mm.reset(n)
		r.mm.add(L.Wo, attn, xn, E)
		r.mm.run()
		addBias(xn, L.Bo)
		if L.PostAttnNorm != nil {
			rmsNormRows(xn, xn, L.PostAttnNorm, E, c.NormEps)
		}
		addInPlace(x, xn)
		r.ffn(L, x, xn, gate, up, n)
	}
	// Sliding-window layers may now release pages no later token attends.
	for i := 0; i < n; i++ {
		if i == 0 || seqOf(b, i) != seqOf(b, i-1) {
			kv.Release(seqOf(b, i))
		}
	}
	// Logits for the requested rows only.
	r.outRows = r.outRows[:0]
	if b.Output == nil {
		r.outRows = append(r.outRows, n-1)
	} else {
		for i, o := range b.Output {
			if o {
				r.outRows = append(r.outRows, i)
			}
		}
	}
	no := len(r.outRows)
	if no == 0 {
		return nil, nil
	}
	xo := r.xn[:no*E]
	for j, i := range r.outRows {
		copy(xo[j*E:(j+1)*E], x[i*E:(i+1)*E])
	}
	rmsNormRows(xo, xo, m.OutputNorm, E, c.NormEps)
	if b.Embeddings {
		return xo, nil
	}
	if cap(r.logits) < no*c.NVocab {
		r.logits = make([]float32, no*c.NVocab)
	}
	logits := r.logits[:no*c.NVocab]
	if b.Lora != nil {
		r.outLora = r.outLora[:0]
		for _, i := range r.outRows {
			r.outLora = append(r.outLora, b.Lora[i])
		}
		r.mm.lora = r.outLora
	}
	r.mm.reset(no)
	r.mm.add(m.Output, xo, logits, c.NVocab)
	r.mm.run()
	if c.FinalSoftcap != 0 {
		softcapRows(logits, c.FinalSoftcap)
	}
	return logits, nil
}

// ffn adds layer L's FFN of the residual rows x to x (xn is scratch).
func (r *Runner) ffn(L *Layer, x, xn, gate, up []float32, n int) {
	c := &r.M.Config
	E := c.NEmbd
	rmsNormRows(xn, x, L.FFNNorm, E, c.NormEps)
	if L.Router != nil {
		r.moeFFN(L, xn, n)
	} else {
		r.mm.reset(n)
		r.mm.add(L.Gate, xn, gate, c.NFF)
		r.mm.add(L.Up, xn, up, c.NFF)
		r.mm.run()
		r.glu(gate, gate, up)
		r.mm.reset(n)
		r.mm.add(L.Down, gate, xn, E)
		r.mm.run()
	}
	if L.PostFFNNorm != nil {
		rmsNormRows(xn, xn, L.PostFFNNorm, E, c.NormEps)
	}
	addInPlace(x, xn)
}

// splitGate splits gated attention's attn_q output (per head: HeadDim
// query values, then HeadDim gate values) into q and the gates.
func (r *Runner) splitGate(q []float32, n int) {
	c := &r.M.Config
	D := c.HeadDim
	for t := 0; t < n; t++ {
		for h := 0; h < c.NHead; h++ {
			src := r.qg[(t*c.NHead+h)*2*D:]
			copy(q[(t*c.NHead+h)*D:(t*c.NHead+h+1)*D], src[:D])
			copy(r.agt[(t*c.NHead+h)*D:(t*c.NHead+h+1)*D], src[D:2*D])
		}
	}
}

// lastRunOf reports whether no token after [i, j) belongs to token i's
// sequence.
func lastRunOf(b *Batch, i, j int) bool {
	for k := j; k < len(b.Tokens); k++ {
		if seqOf(b, k) == seqOf(b, i) {
			return false
		}
	}
	return true
}

func seqOf(b *Batch, i int) int {
	if b.Seq == nil {
		return 0
	}
	return b.Seq[i]
}

// attnTask computes attention for one (run of tokens, kv head) per item.
type attnTask struct {
	r     *Runner
	b     *Batch
	kv    KV
	layer int
}

func (t *attnTask) Do(item, worker int) {
	c := &t.r.M.Config
	run, h := t.r.runs[item/c.NHeadKV], item%c.NHeadKV
	tok, nTok := run[0], run[1]
	g := c.NHead / c.NHeadKV
	q := t.r.q[(tok*c.NHead+h*g)*c.HeadDim:]
	out := t.r.attn[(tok*c.NHead+h*g)*c.HeadDimV:]
	t.kv.AttendRun(t.layer, seqOf(t.b, tok), t.b.Pos[tok], nTok, h, g, q, c.NHead*c.HeadDim, out, c.NHead*c.HeadDimV, worker)
}

// rmsNormRows normalises each row of dim elements of src into dst (which
// may be src) and multiplies by w.
func rmsNormRows(dst, src, w []float32, dim int, eps float32) {
	for off := 0; off+dim <= len(src); off += dim {
		s := src[off : off+dim]
		ss := kernels.SumSquares(s)
		scale := float32(1 / math.Sqrt(float64(ss)/float64(dim)+float64(eps)))
		d := dst[off : off+dim]
		kernels.Mul(d, s, w[:dim])
		kernels.Scale(scale, d)
	}
}

// addBias adds b to every row of x (nothing when b is nil).
func addBias(x, b []float32) {
	if b == nil {
		return
	}
	for off := 0; off < len(x); off += len(b) {
		row := x[off : off+len(b)]
		kernels.Add(row, row, b)
	}
}

func addInPlace(dst, src []float32) { kernels.Add(dst, dst, src) }

func siluMul(dst, gate, up []float32) { kernels.SiLUMul(dst, gate, up) }

// softcapRows replaces each logit l by c·tanh(l/c).
func softcapRows(x []float32, c float32) {
	for i, v := range x {
		x[i] = c * float32(math.Tanh(float64(v/c)))
	}
}
