package model

import (
	"time"

	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/parallel"
)

// PackStats says what Pack did.
type PackStats struct {
	Matrices int   // matrices packed
	Bytes    int64 // bytes of packed weights (memory outside the file mapping)
	Released int64 // bytes of the file mapping handed back to the OS
	Duration time.Duration
}

// Pack copies every weight matrix that this machine's kernels read faster
// in the packed layout (ops.CanPack: quantized weights on the AVX-512
// path, the row-lane types on AVX2; docs/kernels.md) into one anonymous memory region in that layout,
// and tells the OS that the file mapping's pages of those matrices are no
// longer needed (gguf.File.Release), so the resident set holds each weight
// once. Outputs do not change: packed products are bit-identical to the
// row-major ones. The matrices are packed in parallel on pool (nil: one
// thread). Call it once, before any forward pass; Close frees the region.
func (m *Model) Pack(pool *parallel.Pool) PackStats {
	var ws []*Linear
	seen := map[*Linear]bool{}
	add := func(w *Linear) {
		if w != nil && !seen[w] && w.Packed == nil && ops.CanPack(w.Type, w.In) {
			seen[w] = true
			ws = append(ws, w)
		}
	}
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, w := range []*Linear{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down} {
			add(w)
		}
	}
	add(m.Output)
	t0 := time.Now()
	var st PackStats
	offs := make([]int, len(ws)+1)
	for i, w := range ws {
		offs[i+1] = offs[i] + (ops.PackedSize(w.Type, w.Out, w.In)+4095)/4096*4096
	}
	if len(ws) == 0 {
		return st
	}
	region := allocPacked(offs[len(ws)])
	m.packed = region
	job := packJob{ws: ws, offs: offs, region: region.b, m: m, released: make([]int64, len(ws))}
	if pool != nil {
		pool.Run(len(ws), &job)
	} else {
		for i := range ws {
			job.Do(i, 0)
		}
	}
	for i, w := range ws {
		st.Matrices++
		st.Bytes += int64(len(w.Packed))
		st.Released += job.released[i]
	}
	st.Duration = time.Since(t0)
	return st
}

type packJob struct {
	ws       []*Linear
	offs     []int
	region   []byte
	m        *Model
	released []int64
}

func (j *packJob) Do(i, _ int) {
	w := j.ws[i]
	p := j.region[j.offs[i] : j.offs[i]+ops.PackedSize(w.Type, w.Out, w.In)]
	ops.Pack(w.Type, p, w.Data, w.RowBytes, w.Out, w.In)
	w.Packed = p
	// Release the file's pages of this matrix now, so that the resident
	// set never holds both copies of more than the matrices in flight.
	if j.m.File != nil {
		j.released[i] = int64(j.m.File.Release(w.Data))
	}
}

// Close frees the packed weights (Pack); the model must not be used
// afterwards. A model never packed has nothing to free.
func (m *Model) Close() {
	if m.packed != nil {
		m.packed.free()
		m.packed = nil
	}
}
