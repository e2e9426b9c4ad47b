package model

import (
	"os"
	"time"
	"unsafe"

	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/tensor"
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
	// Release the file's pages of each chunk of rows as soon as it is
	// packed, so that the resident set never holds both copies of more
	// than a chunk per matrix in flight (the output matrix of an 8B model
	// is 430 MB: whole, it would add that much to the peak).
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(w.Data)))
	ps := uintptr(os.Getpagesize())
	rel := int((addr+ps-1)/ps*ps - addr) // w.Data[:rel] is not all this matrix's: kept
	packChunks(w.Type, p, w.Data, w.RowBytes, w.Out, w.In, packChunkBytes, func(end int) {
		hi := int((addr+uintptr(end))/ps*ps - addr)
		if j.m.File != nil && hi > rel {
			j.released[i] += int64(j.m.File.Release(w.Data[rel:hi]))
			rel = hi
		}
	})
	w.Packed = p
}

// packChunkBytes is about how many bytes of a matrix's rows are packed
// before their file pages are released.
const packChunkBytes = 8 << 20

// packChunks is ops.Pack of the m×k matrix w into dst in chunks of whole
// 16-row groups of about chunk bytes (a packed group of 16 rows starts
// at ops.PackedSize(t, r0, k) for r0 a multiple of 16), calling done with
// the bytes of w read so far after each chunk. The result is the same as
// one ops.Pack.
func packChunks(t tensor.Type, dst, w []byte, ldw, m, k, chunk int, done func(end int)) {
	rows := max(chunk/max(ldw, 1)/16*16, 16)
	for r0 := 0; r0 < m; r0 += rows {
		n := min(rows, m-r0)
		lo, hi := ops.PackedSize(t, r0, k), ops.PackedSize(t, r0+n, k)
		ops.Pack(t, dst[lo:hi], w[r0*ldw:], ldw, n, k)
		end := (r0+n-1)*ldw + t.RowSize(k)
		if r0+n < m {
			end = (r0 + n) * ldw
		}
		done(min(end, len(w)))
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
