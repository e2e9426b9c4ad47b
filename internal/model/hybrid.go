package model

import (
	"fmt"
	"math"

	"github.com/kvserve/kvserve/internal/deltanet"
	"github.com/kvserve/kvserve/internal/kernels"
)

// Gated DeltaNet layers of hybrid models, as llama.cpp's qwen3next graph
// computes them (build_layer_attn_linear):
//
//  1. ssm_in·x gives, per key head, q (State), k (State), v and z (State
//     per value head of the group); ssm_ba·x gives, per key head, β then α
//     for each value head of the group;
//  2. the q, k and v channels go through the causal convolution (ssm_conv1d,
//     carried state) and SiLU;
//  3. q and k are L2-normalised (q also scaled by 1/sqrt(HeadV)), each value
//     head uses key head h/(NV/NK); β = sigmoid(b), g = softplus(α + dt)·A;
//  4. the gated delta rule over the head's recurrent state (package
//     deltanet: the chunked form for runs of several tokens, the recurrent
//     form for one);
//  5. per value head, RMSNorm(out)·ssm_norm·SiLU(z); then ssm_out.
//
// The convolution and recurrent states are the cache's (StateKV): the
// forward pass reads and advances them in place.

// StateKV is a KV cache that also holds the state of a hybrid model's
// recurrent layers, per sequence. A sequence's state has absorbed its
// first StatePos tokens; it cannot be rolled back, so a batch continues a
// sequence exactly there (or restarts it at position 0, which clears it).
type StateKV interface {
	KV
	// State returns seq's convolution state (ConvStateFloats) and
	// recurrent state (StateFloats) of recurrent layer layer.
	State(layer, seq int) (conv, ssm []float32)
	// StatePos is the number of tokens seq's state has absorbed.
	StatePos(seq int) int
	// SetStatePos records it (0 clears the state).
	SetStatePos(seq, n int)
	// CheckpointEvery is the spacing (in positions) of the state
	// checkpoints the cache keeps, 0 for none: the forward pass splits its
	// runs there and calls Checkpoint for each recurrent layer (and also
	// before each sequence's last token of a batch).
	CheckpointEvery() int
	// Checkpoint copies seq's state of layer, which has absorbed exactly
	// pos tokens, into the cache's checkpoint at pos.
	Checkpoint(layer, seq, pos int)
}

// hybridScratch holds the recurrent layers' buffers.
type hybridScratch struct {
	qkvz, ba, cx, z, core []float32
	g, beta               []float32
	heads                 []*deltanet.Scratch // per worker
	kv                    [][]float32         // per worker, HeadV
	task                  headTask
}

func newHybridScratch(c *Config, maxBatch, threads int) *hybridScratch {
	s := &c.SSM
	if s.ShortConv {
		E := c.NEmbd
		return &hybridScratch{qkvz: make([]float32, maxBatch*3*E), cx: make([]float32, maxBatch*E), core: make([]float32, maxBatch*E)}
	}
	h := &hybridScratch{
		qkvz: make([]float32, maxBatch*(2*s.NK*s.State+2*s.Inner)),
		ba:   make([]float32, maxBatch*2*s.NV),
		cx:   make([]float32, maxBatch*s.ConvChannels()),
		z:    make([]float32, maxBatch*s.Inner),
		core: make([]float32, maxBatch*s.Inner),
		g:    make([]float32, maxBatch*s.NV),
		beta: make([]float32, maxBatch*s.NV),
	}
	for range max(threads, 1) {
		h.heads = append(h.heads, deltanet.NewScratch(s.State, s.HeadV()))
		h.kv = append(h.kv, make([]float32, s.HeadV()))
	}
	return h
}

// checkState verifies, before anything is computed, that every run of the
// batch continues its sequence's recurrent state, then clears the state of
// runs that start a sequence and advances each sequence's position.
func (r *Runner) checkState(b *Batch, kv KV) (StateKV, error) {
	skv, ok := kv.(StateKV)
	if !ok {
		return nil, fmt.Errorf("%s is a hybrid model: its cache must hold recurrent state", r.M.Arch)
	}
	for i, run := range r.runs {
		seq, pos0 := seqOf(b, run[0]), b.Pos[run[0]]
		want := skv.StatePos(seq)
		for _, prev := range r.runs[:i] {
			if seqOf(b, prev[0]) == seq {
				want = b.Pos[prev[0]] + prev[1]
			}
		}
		if pos0 != 0 && pos0 != want {
			return nil, fmt.Errorf("sequence %d: the recurrent state holds %d tokens but the batch continues at position %d (a hybrid model's state cannot be rolled back)", seq, want, pos0)
		}
	}
	for _, run := range r.runs {
		seq, pos0 := seqOf(b, run[0]), b.Pos[run[0]]
		if pos0 == 0 {
			skv.SetStatePos(seq, 0)
		}
		skv.SetStatePos(seq, pos0+run[1])
	}
	return skv, nil
}

// deltaNet computes recurrent layer l for the n tokens of xn (normalised
// residual rows) and writes its output (after ssm_out) over xn.
func (r *Runner) deltaNet(l int, L *Layer, b *Batch, xn []float32, n int, kv StateKV) {
	c := &r.M.Config
	s := &c.SSM
	h := r.hy
	dk, dv, NK, NV := s.State, s.HeadV(), s.NK, s.NV
	CH := s.ConvChannels()
	cx, z := h.cx[:n*CH], h.z[:n*s.Inner]
	if s.Split {
		// Qwen3.5: q, k, v come in the convolution's channel order.
		ba := h.ba[:n*2*NV]
		r.mm.reset(n)
		r.mm.add(L.SSMQKV, xn, cx, CH)
		r.mm.add(L.SSMZ, xn, z, s.Inner)
		r.mm.add(L.SSMBeta, xn, ba[:n*NV], NV)
		r.mm.add(L.SSMAlpha, xn, ba[n*NV:], NV)
		r.mm.run()
		for t := 0; t < n; t++ {
			for hv := 0; hv < NV; hv++ {
				h.beta[t*NV+hv] = deltanet.Sigmoid(ba[t*NV+hv])
				h.g[t*NV+hv] = deltanet.Softplus(ba[n*NV+t*NV+hv]+L.SSMDt[hv]) * L.SSMA[hv]
			}
		}
	} else {
		r.qwen3NextProjections(L, xn, n)
	}

	// Each run of one sequence: convolution, normalisation, delta rule.
	qscale := float32(1 / math.Sqrt(float64(dv)))
	for ri, run := range r.runs {
		t0, m := run[0], run[1]
		conv, ssm := kv.State(l, seqOf(b, t0))
		rows := cx[t0*CH : (t0+m)*CH]
		deltanet.Conv(rows, m, CH, L.SSMConv, s.ConvKernel, conv)
		for t := 0; t < m; t++ {
			row := rows[t*CH:]
			for kh := 0; kh < NK; kh++ {
				q := row[kh*dk : (kh+1)*dk]
				deltanet.L2Norm(q, c.NormEps)
				kernels.Scale(qscale, q)
				deltanet.L2Norm(row[NK*dk+kh*dk:NK*dk+(kh+1)*dk], c.NormEps)
			}
		}
		h.task = headTask{r: r, rows: rows, m: m, t0: t0, ssm: ssm}
		r.pool.Run(NV, &h.task)
		if r.ckpt[ri] {
			kv.Checkpoint(l, seqOf(b, t0), b.Pos[t0]+m)
		}
	}

	// Gated RMSNorm per value head, then ssm_out.
	core := h.core[:n*s.Inner]
	for t := 0; t < n; t++ {
		for hv := 0; hv < NV; hv++ {
			o := core[t*s.Inner+hv*dv : t*s.Inner+(hv+1)*dv]
			rmsNormRows(o, o, L.SSMNorm, dv, c.NormEps)
			zz := z[t*s.Inner+hv*dv : t*s.Inner+(hv+1)*dv]
			for i := range o {
				o[i] *= zz[i] / (1 + float32(math.Exp(float64(-zz[i]))))
			}
		}
	}
	r.mm.reset(n)
	r.mm.add(L.SSMOut, core, xn, c.NEmbd)
	r.mm.run()
}

// shortConv computes LFM2's gated short-convolution layer l for the n
// tokens of xn and writes its output (after out_proj) over xn.
func (r *Runner) shortConv(l int, L *Layer, b *Batch, xn []float32, n int, kv StateKV) {
	c := &r.M.Config
	h := r.hy
	E := c.NEmbd
	bcx, bx, y := h.qkvz[:n*3*E], h.cx[:n*E], h.core[:n*E]
	r.mm.reset(n)
	r.mm.add(L.SSMIn, xn, bcx, 3*E)
	r.mm.run()
	for t := 0; t < n; t++ {
		kernels.Mul(bx[t*E:(t+1)*E], bcx[t*3*E:t*3*E+E], bcx[t*3*E+2*E:(t+1)*3*E])
	}
	for ri, run := range r.runs {
		t0, m := run[0], run[1]
		conv, _ := kv.State(l, seqOf(b, t0))
		deltanet.ConvLinear(bx[t0*E:(t0+m)*E], m, E, L.SSMConv, c.SSM.ConvKernel, conv)
		if r.ckpt[ri] {
			kv.Checkpoint(l, seqOf(b, t0), b.Pos[t0]+m)
		}
	}
	for t := 0; t < n; t++ {
		kernels.Mul(y[t*E:(t+1)*E], bcx[t*3*E+E:t*3*E+2*E], bx[t*E:(t+1)*E])
	}
	r.mm.reset(n)
	r.mm.add(L.SSMOut, y, xn, E)
	r.mm.run()
}

// qwen3NextProjections computes ssm_in and ssm_ba and splits them, per
// key-head group (q, k, v, z; β then α), into the convolution's channels
// (all q, all k, all v), z, β and g.
func (r *Runner) qwen3NextProjections(L *Layer, xn []float32, n int) {
	c := &r.M.Config
	s := &c.SSM
	h := r.hy
	dk, dv, NK, NV := s.State, s.HeadV(), s.NK, s.NV
	rep := NV / NK
	qkvzDim, CH := 2*NK*dk+2*s.Inner, s.ConvChannels()
	qkvz, ba := h.qkvz[:n*qkvzDim], h.ba[:n*2*NV]
	r.mm.reset(n)
	r.mm.add(L.SSMIn, xn, qkvz, qkvzDim)
	r.mm.add(L.SSMBA, xn, ba, 2*NV)
	r.mm.run()
	cx, z := h.cx[:n*CH], h.z[:n*s.Inner]
	grp := 2*dk + 2*rep*dv
	for t := 0; t < n; t++ {
		src, dst := qkvz[t*qkvzDim:], cx[t*CH:]
		for kh := 0; kh < NK; kh++ {
			g := src[kh*grp:]
			copy(dst[kh*dk:(kh+1)*dk], g[:dk])
			copy(dst[NK*dk+kh*dk:NK*dk+(kh+1)*dk], g[dk:2*dk])
			copy(dst[2*NK*dk+kh*rep*dv:2*NK*dk+(kh+1)*rep*dv], g[2*dk:2*dk+rep*dv])
			copy(z[t*s.Inner+kh*rep*dv:t*s.Inner+(kh+1)*rep*dv], g[2*dk+rep*dv:grp])
		}
		bat := ba[t*2*NV:]
		for kh := 0; kh < NK; kh++ {
			for j := 0; j < rep; j++ {
				hv := kh*rep + j
				h.beta[t*NV+hv] = deltanet.Sigmoid(bat[kh*2*rep+j])
				h.g[t*NV+hv] = deltanet.Softplus(bat[kh*2*rep+rep+j]+L.SSMDt[hv]) * L.SSMA[hv]
			}
		}
	}
}

// headTask runs the delta rule of one value head (item) over one run.
type headTask struct {
	r     *Runner
	rows  []float32 // the run's convolved channels
	m, t0 int
	ssm   []float32
}

func (t *headTask) Do(hv, worker int) {
	c := &t.r.M.Config
	s := &c.SSM
	h := t.r.hy
	dk, dv, NK := s.State, s.HeadV(), s.NK
	kh := s.KeyHead(hv)
	CH := s.ConvChannels()
	S := t.ssm[hv*dk*dv : (hv+1)*dk*dv]
	q := t.rows[kh*dk:]
	k := t.rows[NK*dk+kh*dk:]
	v := t.rows[2*NK*dk+hv*dv:]
	out := h.core[t.t0*s.Inner+hv*dv:]
	g, beta := h.g[t.t0*s.NV:], h.beta[t.t0*s.NV:]
	if t.m == 1 {
		deltanet.Step(S, q[:dk], k[:dk], v[:dv], g[hv], beta[hv], out[:dv], h.kv[worker])
		return
	}
	hs := h.heads[worker]
	gg, bb := hs.PerToken(t.m)
	for i := 0; i < t.m; i++ {
		gg[i], bb[i] = g[i*s.NV+hv], beta[i*s.NV+hv]
	}
	hs.Chunked(S, t.m, q, CH, k, CH, v, CH, gg, bb, out, s.Inner)
}
