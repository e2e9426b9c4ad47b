package kvcache

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

func hybridCache(t *testing.T, checkpoints int) *Cache {
	t.Helper()
	types := []tensor.Type{tensor.F16, tensor.F16, tensor.F16, tensor.F16}
	c, err := New(Config{Layers: 4, KVHeads: 2, HeadDimK: 32, HeadDimV: 32, Seqs: 2, Ctx: 256, PageTokens: 16,
		TypeK: types, TypeV: types, Recurrent: []bool{true, true, true, false}, ConvState: 12, SSMState: 40, Checkpoints: checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// fillHybrid stores n tokens in seq as the forward pass would: the attention
// layer's rows, the recurrent layers' state (a value that encodes the
// position), checkpoints at page boundaries.
func fillHybrid(c *Cache, seq, from, n int) {
	k := make([]float32, 64)
	for pos := from; pos < from+n; pos++ {
		for i := range k {
			k[i] = float32(pos)
		}
		c.Store(3, seq, pos, k, k)
	}
	c.SetStatePos(seq, from+n)
	for l := 0; l < 3; l++ {
		conv, ssm := c.State(l, seq)
		for i := range conv {
			conv[i] = float32(from + n + l)
		}
		for i := range ssm {
			ssm[i] = float32(-(from + n) - l)
		}
		if (from+n)%16 == 0 {
			c.Checkpoint(l, seq, from+n)
		}
	}
}

// The state is accounted apart from the pages, checkpoints are bounded and
// keep the latest, Reusable and Truncate resume from them, and recurrent
// layers hold no pages (nor count in the capacity).
func TestRecurrentStateAccounting(t *testing.T) {
	c := hybridCache(t, 2)
	if !c.Hybrid() || !c.IsRecurrent(0) || c.IsRecurrent(3) {
		t.Fatal("layers not marked")
	}
	if got, want := c.StateBytesPerSeq(), int64(3*(12+40)*4); got != want {
		t.Fatalf("state per slot %d bytes, want %d", got, want)
	}
	for i := 0; i < 4; i++ {
		fillHybrid(c, 0, i*16, 16)
	}
	fillHybrid(c, 0, 64, 5)
	if got := c.SeqCheckpoints(0); len(got) != 2 || got[0]+got[1] != 48+64 {
		t.Fatalf("checkpoints %v, want the latest two (48, 64)", got)
	}
	if got := c.StateBytes(); got != c.StateBytesPerSeq()*(2+2) {
		t.Errorf("state bytes %d, want two live states and two checkpoints", got)
	}
	if c.StateCapacity() != c.StateBytesPerSeq()*2*3 {
		t.Errorf("state capacity %d", c.StateCapacity())
	}
	if c.Len(0) != 69 || c.NumPages(0, 0) != 0 || c.NumPages(0, 3) != 5 {
		t.Errorf("len %d, pages %d/%d", c.Len(0), c.NumPages(0, 0), c.NumPages(0, 3))
	}
	full := int64(256/16) * int64(c.cfg.PageBytes(tensor.F16, false)+c.cfg.PageBytes(tensor.F16, true)) * 2
	if c.Capacity() != full {
		t.Errorf("capacity %d, want only the attention layer's pages %d", c.Capacity(), full)
	}
	for n, want := range map[int]int{69: 69, 68: 64, 63: 48, 40: 0} {
		if got := c.Reusable(0, n); got != want {
			t.Errorf("Reusable(%d) = %d, want %d", n, got, want)
		}
	}
	c.Truncate(0, 64)
	if conv, _ := c.State(1, 0); c.StatePos(0) != 64 || conv[0] != 65 {
		t.Errorf("truncated to the checkpoint: state at %d, conv %v", c.StatePos(0), conv[0])
	}
	c.Truncate(0, 50)
	if c.StatePos(0) != -1 {
		t.Errorf("truncated between checkpoints: state at %d, want invalid", c.StatePos(0))
	}
	c.Clear(0)
	if conv, ssm := c.State(0, 0); c.StatePos(0) != 0 || conv[0] != 0 || ssm[0] != 0 || len(c.SeqCheckpoints(0)) != 0 {
		t.Error("cleared sequence keeps state")
	}
}

// A saved sequence carries its recurrent state; a restore gives it back
// bit for bit, and an inconsistent state is not saved.
func TestRecurrentStatePersists(t *testing.T) {
	c := hybridCache(t, 1)
	fillHybrid(c, 0, 0, 16)
	fillHybrid(c, 0, 16, 7)
	var buf bytes.Buffer
	if err := c.WriteSeq(0, &buf); err != nil {
		t.Fatal(err)
	}
	n, err := c.ReadSeq(1, bytes.NewReader(buf.Bytes()))
	if err != nil || n != 23 {
		t.Fatalf("restored %d positions: %v", n, err)
	}
	if c.StatePos(1) != 23 {
		t.Fatalf("restored state at %d", c.StatePos(1))
	}
	for l := 0; l < 3; l++ {
		a, b := c.State(l, 0)
		x, y := c.State(l, 1)
		if !equalF32(a, x) || !equalF32(b, y) {
			t.Fatalf("layer %d: restored state differs", l)
		}
	}
	c.Truncate(0, 20) // no checkpoint there
	if err := c.WriteSeq(0, &buf); err == nil || !strings.Contains(err.Error(), "recurrent state") {
		t.Errorf("saving an invalid state: err = %v", err)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
