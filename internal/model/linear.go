package model

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/tensor"
)

// weightTypes are the tensor types the forward pass computes with (for
// messages; the check is supportedWeight).
var weightTypes = tensor.TypesFor(tensor.Weight)

func supportedWeight(t tensor.Type) bool { return t.Allows(tensor.Weight) }

// prefillTileRows is the number of weight rows one prefill work item
// covers (amortising the packing of weights over many tokens); a multiple
// of the GEMM kernels' row tile (8). Decoding (a few tokens) instead gives
// each thread one contiguous share of every matrix: it streams better
// (measured 8-25% faster decode than 16-row tiles on kvtest-27m).
const prefillTileRows = 64

// lanesTileRows is the fewest rows one work item covers when the row-lane
// kernels read packed weights in place for more than 4 tokens
// (ops.LanesInPlace): their per-call activation preparation (a copy of
// every token's activations) is then repaid over 1024 rows, not 64. Packed
// float weights read in place (small batches) take the same long runs,
// which stream better than 64-row tiles.
const lanesTileRows = 1024

// mmJob is one matrix product y = W·x over a batch: x holds n rows of
// W.In f32 values, y receives n rows of ldy values (W.Out of them used,
// starting at column 0).
type mmJob struct {
	w   *Linear
	x   []float32
	xq  []byte // x in w.Type.VecDotType() (x's own bytes when that is f32)
	y   []float32
	ldy int
	n   int // rows of x (tokens)
}

// matmuls runs several independent matrix products as one parallel pass,
// splitting each into tiles of rows. It allocates nothing once its buffers
// have grown to the batch size.
type matmuls struct {
	pool  *parallel.Pool
	jobs  []mmJob
	tiles []int // prefix sums: tiles[i] = first tile of job i
	nTok  int
	rows  []int // rows per tile, per job
	total int
	qbufs [][]byte // per job slot, reused across passes
	// lora, when set, holds each row's (token's) adapter scales for the
	// pass (Batch.Lora); nil: the adapters' own scales.
	lora [][]float32
}

func (mm *matmuls) reset(nTok int) {
	mm.jobs = mm.jobs[:0]
	mm.nTok = nTok
}

func (mm *matmuls) add(w *Linear, x []float32, y []float32, ldy int) {
	mm.jobs = append(mm.jobs, mmJob{w: w, x: x, y: y, ldy: ldy, n: mm.nTok})
}

// addRows queues a product over n rows of x (n may differ from the pass's
// batch: an expert sees only the tokens routed to it). xq, when not nil,
// is x already converted to w's vec-dot type (shared by many jobs).
func (mm *matmuls) addRows(w *Linear, x []float32, xq []byte, y []float32, ldy, n int) {
	if n == 0 {
		return
	}
	mm.jobs = append(mm.jobs, mmJob{w: w, x: x, xq: xq, y: y, ldy: ldy, n: n})
}

// run executes the queued jobs. Inputs needing conversion to a quantized
// vec-dot type are converted once per distinct (input, type).
func (mm *matmuls) run() {
	for i := range mm.jobs {
		j := &mm.jobs[i]
		if j.xq != nil {
			continue // converted by the caller
		}
		vt := vecDotType(j.w.Type)
		x := j.x[:j.n*j.w.In]
		if vt == tensor.F32 {
			j.xq = ops.Activations(vt, nil, x) // x's own bytes
			continue
		}
		// Reuse a conversion of the same input made for an earlier job.
		for k := 0; k < i; k++ {
			if p := &mm.jobs[k]; vecDotType(p.w.Type) == vt && sameSlice(p.x, j.x) {
				j.xq = p.xq
				break
			}
		}
		if j.xq != nil {
			continue
		}
		rs := vt.RowSize(j.w.In)
		for len(mm.qbufs) <= i {
			mm.qbufs = append(mm.qbufs, nil)
		}
		if need := rs * j.n; len(mm.qbufs[i]) < need {
			mm.qbufs[i] = make([]byte, need)
		}
		j.xq = ops.Activations(vt, mm.qbufs[i], x)
	}
	mm.tiles = mm.tiles[:0]
	mm.rows = mm.rows[:0]
	mm.total = 0
	for i := range mm.jobs {
		j := &mm.jobs[i]
		rows := prefillTileRows
		th := mm.pool.Threads()
		switch {
		case j.n <= 4:
			// Decoding is memory-bound: give each thread one contiguous
			// share of the matrix to stream.
			rows = ((j.w.Out+th-1)/th + 15) / 16 * 16
		case j.w.Packed != nil && ops.LanesInPlace(j.w.Type, j.n):
			// The row-lane kernels tile for L2 themselves, but prepare
			// every token's activations per call: long runs of rows, four
			// per thread (so a slow thread is helped).
			rows = max(lanesTileRows, ((j.w.Out+4*th-1)/(4*th)+15)/16*16)
		}
		mm.tiles = append(mm.tiles, mm.total)
		mm.rows = append(mm.rows, rows)
		mm.total += (mm.jobs[i].w.Out + rows - 1) / rows
	}
	mm.pool.Run(mm.total, mm)
	mm.applyLora()
	for i := range mm.jobs {
		mm.jobs[i].xq = nil
	}
}

func sameSlice(a, b []float32) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// Do computes one tile of rows of one job for all tokens.
func (mm *matmuls) Do(item, worker int) {
	ji := len(mm.tiles) - 1
	for ji > 0 && mm.tiles[ji] > item {
		ji--
	}
	j := &mm.jobs[ji]
	r0 := (item - mm.tiles[ji]) * mm.rows[ji]
	r1 := min(r0+mm.rows[ji], j.w.Out)
	mulRows(j, r0, r1, j.n)
}
