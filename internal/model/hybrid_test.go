package model_test

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/tensor"
)

func newHybridCache(t testing.TB, m *model.Model, checkpoints int) *kvcache.Cache {
	types := make([]tensor.Type, m.NLayer)
	for i := range types {
		types[i] = tensor.F16
	}
	c, err := kvcache.New(kvcache.Config{Layers: m.NLayer, KVHeads: m.NHeadKV, HeadDimK: m.HeadDim, HeadDimV: m.HeadDimV,
		Seqs: 2, Ctx: 1024, PageTokens: 32, Threads: 2, TypeK: types, TypeV: types,
		Recurrent: m.Recurrent, ConvState: m.SSM.ConvStateFloats(), SSMState: m.SSM.StateFloats(), Checkpoints: checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// qwen3next: a prompt evaluated in one batch (the chunked delta rule over
// runs split at the cache's page boundaries) gives the logits of the same
// tokens decoded one at a time (the recurrent form) to float rounding, and
// a decode step allocates nothing.
func TestHybridPrefillEqualsDecode(t *testing.T) {
	m := loadPath(t, synthFile(t, "tiny-qwen3next", "f16"))
	if m.Recurrent == nil || !m.Recurrent[0] || m.Recurrent[3] || m.Layers[0].SSMIn == nil || m.Layers[3].Wq == nil {
		t.Fatalf("layers not loaded as hybrid: %v", m.Recurrent)
	}
	pool := parallel.New(2)
	defer pool.Close()
	const n = 100
	toks := make([]int, n)
	pos := make([]int, n)
	out := make([]bool, n)
	for i := range toks {
		toks[i] = (i*7919 + 13) % 8000
		pos[i] = i
		out[i] = true
	}
	r := model.NewRunner(m, pool, n)
	kv := newHybridCache(t, m, 3)
	lg, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos, Output: out}, kv)
	if err != nil {
		t.Fatal(err)
	}
	batch := append([]float32(nil), lg...)
	if got := kv.SeqCheckpoints(0); len(got) != 3 || got[0]+got[1]+got[2] != 64+96+99 {
		t.Errorf("checkpoints at %v, want the latest three: 64, 96 (page boundaries) and 99 (before the last token)", got)
	}
	kv2 := newHybridCache(t, m, 0)
	V := m.NVocab
	b := &model.Batch{Tokens: []int{0}, Pos: []int{0}}
	worst := 0.0
	for i := range toks {
		b.Tokens[0], b.Pos[0] = toks[i], i
		lg, err := r.Forward(b, kv2)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range lg {
			worst = max(worst, math.Abs(float64(v-batch[i*V+j])))
		}
	}
	t.Logf("largest logit difference, batch vs token by token: %.2g", worst)
	if worst > 1e-3 {
		t.Errorf("batch and token-by-token logits differ by %g", worst)
	}
	allocs := testing.AllocsPerRun(20, func() {
		b.Pos[0]++
		if _, err := r.Forward(b, kv2); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("hybrid decode step allocates %v objects", allocs)
	}
}

// The recurrent state cannot be rolled back: continuing a sequence
// anywhere but where its state is is an error; restarting at 0 clears it;
// truncating to a checkpoint restores the state there, so continuing from
// it gives the logits of an uninterrupted run.
func TestHybridStateContinuity(t *testing.T) {
	m := loadPath(t, synthFile(t, "tiny-qwen3next", "f16"))
	pool := parallel.New(2)
	defer pool.Close()
	r := model.NewRunner(m, pool, 80)
	kv := newHybridCache(t, m, 3)
	toks := make([]int, 80)
	pos := make([]int, 80)
	for i := range toks {
		toks[i], pos[i] = (i*31+7)%8000, i
	}
	lg, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos}, kv)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), lg...)
	if _, err := r.Forward(&model.Batch{Tokens: []int{1}, Pos: []int{40}}, kv); err == nil || !strings.Contains(err.Error(), "cannot be rolled back") {
		t.Fatalf("continuing at 40 of 80: err = %v", err)
	}
	if got := kv.Reusable(0, 70); got != 64 {
		t.Fatalf("Reusable(70) = %d, want the checkpoint at 64", got)
	}
	kv.Truncate(0, 64)
	if kv.StatePos(0) != 64 {
		t.Fatalf("state holds %d tokens after truncating to the checkpoint", kv.StatePos(0))
	}
	lg, err = r.Forward(&model.Batch{Tokens: toks[64:], Pos: pos[64:]}, kv)
	if err != nil {
		t.Fatal(err)
	}
	for j := range lg {
		if d := math.Abs(float64(lg[j] - want[j])); d > 1e-4 {
			t.Fatalf("resumed from the checkpoint: logit %d differs by %g", j, d)
		}
	}
	kv.Truncate(0, 50) // no checkpoint there: the state is invalid
	if _, err := r.Forward(&model.Batch{Tokens: toks[50:], Pos: pos[50:]}, kv); err == nil {
		t.Fatal("continuing an invalidated state succeeded")
	}
	if _, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos}, kv); err != nil { // restart at 0
		t.Fatal(err)
	}
}

// A hybrid file missing one of a recurrent layer's tensors is refused with
// an error naming it.
func TestHybridMissingStateTensor(t *testing.T) {
	path := synthFile(t, "tiny-qwen3next", "f16")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Rename blk.1.ssm_a (same length, so the file stays valid).
	old := []byte("blk.1.ssm_a")
	i := bytes.Index(raw, old)
	if i < 0 {
		t.Fatal("no blk.1.ssm_a")
	}
	copy(raw[i:], "blk.1.ssm_x")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := model.Load(f); err == nil || !strings.Contains(err.Error(), `"blk.1.ssm_a"`) {
		t.Fatalf("err = %v, want one naming blk.1.ssm_a", err)
	} else {
		t.Log(err)
	}
}

// lfm2: gated short-convolution layers (conv state only) beside attention
// layers; a batch gives the logits of the same tokens decoded one by one
// (the convolution's state carries the window: bit for bit), and a layer
// missing its convolution is refused naming it.
func TestLFM2PrefillEqualsDecode(t *testing.T) {
	m := loadPath(t, synthFile(t, "tiny-lfm2", "f16"))
	if !m.SSM.ShortConv || !m.IsRecurrent(0) || m.IsRecurrent(2) || m.NHeadKV != 2 || m.Layers[0].SSMIn == nil || m.Layers[2].Wq == nil {
		t.Fatalf("lfm2 loaded as %+v, kv heads %d", m.SSM, m.NHeadKV)
	}
	pool := parallel.New(2)
	defer pool.Close()
	const n = 70
	toks, pos, outs := make([]int, n), make([]int, n), make([]bool, n)
	for i := range toks {
		toks[i], pos[i], outs[i] = (i*7919+13)%8000, i, true
	}
	r := model.NewRunner(m, pool, n)
	lg, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos, Output: outs}, newHybridCache(t, m, 2))
	if err != nil {
		t.Fatal(err)
	}
	batch := append([]float32(nil), lg...)
	kv := newHybridCache(t, m, 0)
	b := &model.Batch{Tokens: []int{0}, Pos: []int{0}}
	for i := range toks {
		b.Tokens[0], b.Pos[0] = toks[i], i
		lg, err := r.Forward(b, kv)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range lg {
			if v != batch[i*m.NVocab+j] {
				t.Fatalf("token %d logit %d: %v decoded, %v in the batch", i, j, v, batch[i*m.NVocab+j])
			}
		}
	}
}
