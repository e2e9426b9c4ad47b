package kvcache

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Query-aware key encoding (Config.KeyQuery, --cache-key-encode query;
// issue 18, fourth round). A key's quantization error e costs attention
// (q·e)², whose mean over the queries is eᵀCe with C = E[q qᵀ]; the
// nearest-level indices minimise |e|² instead. With KeyQuery on, the cache
// keeps, per sequence, layer and KV head, the running sum of r rᵀ over
// the queries seen so far (float32; the g query heads sharing the KV
// head, every token observed in order), r the query in one rotated basis:
// r = H·S·q (codebook pages) when the K page the token's row goes to is
// of a codebook type (the layer's write type, as a rule), else r = H·q
// (q4_0/q5_0 pages rotated by H alone). Each codebook,
// q4_0 or q5_0 K row written to a rotated page is refined against it
// (tensor.RefineRow, on internal/kernels' SIMD dot products); a page of
// the other basis (a conversion across the two families) is refined
// against the statistic carried into its basis (T·C·Tᵀ, T = H·S·H, which
// is its own inverse), and when the pages written change family (the
// layer's write type or a role's) the statistic itself is carried over.
//
// Memory: KVHeads × HeadDimK² float32s per sequence and attention layer,
// allocated (off the Go heap, as pages) at the sequence's first query and
// freed when the sequence is emptied; counted apart from the pages
// (QueryStatBytes) and by the budget. Only the encoder changes: the format, the
// decoders and attention are the same, and a page written with it reads
// back in any cache.
//
// Properties: a row is refined with the statistic of the moment it is
// encoded; written once (key channels off), that is the queries up to its
// own token whatever the batching, but rows re-encoded at key-channel
// refits make results depend on how a prompt was split into batches (as
// key channels already do); the statistic is not rolled back by Truncate (only
// emptying the sequence resets it). Every other path that encodes K rows
// refines them with the sequence's statistic, as a live write does:
// conversions (requantize, policies: the sequence named by the step; a
// shared page, its first holder), pages converted as they are saved
// (WriteSeqAs, --cache-spill-type), context shifts (Shift) and restores
// (ReadSeqAs repacking or converting a file). A restore keeps the
// statistic the sequence held (it sums the slot's past queries, not any
// token's rows); into a sequence that holds none yet (a fresh or emptied
// slot) keys are encoded by squared error alone, and the statistic starts
// with the next token evaluated (later conversions of the restored pages
// refine with it).

// keyQueryPasses bounds the greedy sweeps per row.
const keyQueryPasses = 4

type qstat struct {
	mem  *block
	c    []float32 // KVHeads × D × D sums of r rᵀ, r the queries in basis kind (over mem)
	kind int       // the basis: Page.rotKind of the pages it refines (1 H, 2 H·S)
	n    int
}

// refineOps runs tensor.RefineRow on the SIMD kernels.
var refineOps = &tensor.RefineOps{DotRows: kernels.DotF32Rows, Axpy: kernels.Axpy}

// QueryObserver is the optional interface (model.QueryObserver) through
// which the forward pass hands the cache each token's queries before
// storing its K and V.
//
// ObserveQuery adds the queries q (NHead × HeadDimK, KV head h's g heads
// at h·g·D) of the token at pos of seq in layer l to the statistic.
func (c *Cache) ObserveQuery(l, seq, pos int, q []float32) {
	if !c.cfg.KeyQuery {
		return
	}
	D := c.cfg.HeadDimK
	H := c.cfg.KVHeads
	if !canRotate(D) || len(q)%(H*D) != 0 || c.IsRecurrent(l) {
		return
	}
	if c.qstats == nil {
		c.qstats = make([][]qstat, c.cfg.Seqs)
	}
	if c.qstats[seq] == nil {
		c.qstats[seq] = make([]qstat, c.cfg.Layers)
	}
	st := &c.qstats[seq][l]
	kind := c.statKind(seq, l, pos)
	if st.c == nil {
		st.mem = allocBlock(c.qstatHeadBytes() * H)
		st.c = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(st.mem.b))), H*D*D)
		st.kind = kind
		c.qbytes.Add(int64(len(st.mem.b)))
	} else if st.kind != kind {
		for h := 0; h < H; h++ {
			rebasis(st.c[h*D*D:(h+1)*D*D], st.kind, kind, D)
		}
		st.kind = kind
	}
	// C += Rᵀ·R for the g rotated queries R (g × D) of each KV head, one
	// pass of the multi-row accumulation kernel (row a of C weighs the
	// rows of R by column a of R: Rt), per entry the queries in order,
	// one fma each — as g rank-1 updates would, and symmetric.
	g := len(q) / (H * D)
	if len(c.qtmp) < 2*g*D {
		c.qtmp = make([]float32, 2*g*D)
	}
	R, Rt := c.qtmp[:g*D], c.qtmp[g*D:2*g*D]
	for h := 0; h < H; h++ {
		copy(R, q[h*g*D:(h+1)*g*D])
		rotateKind(kind, R, D)
		for j := 0; j < g; j++ {
			for a, v := range R[j*D : (j+1)*D] {
				Rt[a*g+j] = v
			}
		}
		kernels.AccumRowsF32Multi(st.c[h*D*D:(h+1)*D*D], D, Rt, g, g, R, D)
	}
	st.n++
}

// statKind is the basis layer l of seq keeps its statistic in while the
// token at pos is written: that of the K page its row goes to (H·S for
// codebook types, else H) — the page held, else the type it will be
// allocated in (the layer's write type, or a role's for that page).
func (c *Cache) statKind(seq, l, pos int) int {
	pi := pos / c.cfg.PageTokens
	k, _ := c.pageTypes(seq, l, pi)
	if s := &c.seqs[seq][l].k; pi < len(s.pages) && s.pages[pi] != nil {
		k = s.pages[pi].Type
	}
	if k.IsCodebook() && signedRotation {
		return 2
	}
	return 1
}

// rebasis carries a D×D second moment C of vectors in rotation basis
// from into basis to: C ← T·C·Tᵀ, T the change of basis (rotating each
// row, transposing, rotating each row again; C is symmetric).
func rebasis(C []float32, from, to, D int) {
	if from == to {
		return
	}
	for pass := 0; pass < 2; pass++ {
		unrotateKind(from, C, D)
		rotateKind(to, C, D)
		for a := 0; a < D; a++ {
			for b := a + 1; b < D; b++ {
				C[a*D+b], C[b*D+a] = C[b*D+a], C[a*D+b]
			}
		}
	}
}

// qstatHeadBytes is the size of one KV head's statistic.
func (c *Cache) qstatHeadBytes() int { return c.cfg.HeadDimK * c.cfg.HeadDimK * 4 }

// keyStat returns the query statistic for K rows of seq's layer l, or nil.
func (c *Cache) keyStat(seq, l int) *qstat {
	if !c.cfg.KeyQuery || c.qstats == nil || c.qstats[seq] == nil {
		return nil
	}
	if st := &c.qstats[seq][l]; st.n > 0 {
		return st
	}
	return nil
}

// resetKeyStats frees seq's query statistics.
func (c *Cache) resetKeyStats(seq int) {
	if c.qstats == nil || c.qstats[seq] == nil {
		return
	}
	for l := range c.qstats[seq] {
		st := &c.qstats[seq][l]
		if st.mem != nil {
			c.qbytes.Add(-int64(len(st.mem.b)))
			st.mem.free()
		}
		*st = qstat{}
	}
}

// QueryStatBytes returns the bytes of query statistics the cache holds
// (--cache-key-encode query; not in Bytes: they are no pages).
func (c *Cache) QueryStatBytes() int64 { return c.qbytes.Load() }

// SeqQueryStatBytes returns the bytes of seq's query statistics.
func (c *Cache) SeqQueryStatBytes(seq int) int64 {
	var n int64
	if c.qstats != nil && c.qstats[seq] != nil {
		for l := range c.qstats[seq] {
			if st := &c.qstats[seq][l]; st.mem != nil {
				n += int64(len(st.mem.b))
			}
		}
	}
	return n
}

// QueryStatBytesPerSeq is what one sequence's query statistics take once
// it has seen queries (0 unless KeyQuery): KVHeads × HeadDimK² float32s
// per attention layer.
func (c *Cache) QueryStatBytesPerSeq() int64 { return QueryStatCapacityFor(c.cfg) / int64(c.cfg.Seqs) }

// QueryStatCapacityFor is the most query-statistic bytes a cache of this
// shape holds (every sequence's), for budgets before the cache is made.
func QueryStatCapacityFor(cfg Config) int64 {
	if !cfg.KeyQuery || !canRotate(cfg.HeadDimK) {
		return 0
	}
	layers := 0
	for l := 0; l < cfg.Layers; l++ {
		if l >= len(cfg.Recurrent) || !cfg.Recurrent[l] {
			layers++
		}
	}
	return int64(cfg.Seqs) * int64(layers) * int64(cfg.KVHeads) * int64(cfg.HeadDimK) * int64(cfg.HeadDimK) * 4
}

// refineStat returns head h's statistic in the basis of page p's rows
// (scratch holds it when carried over from the statistic's own basis),
// or nil when p's rows are not refined.
func (c *Cache) refineStat(p *Page, st *qstat, h int, scratch []float32) []float32 {
	if st == nil || p.side != 0 || !tensor.Refinable(p.Type) || p.rotKind() == 0 {
		return nil
	}
	if _, m := c.pageChan(p); m == KeyChannelsScale { // scores use q⊙s: another C
		return nil
	}
	D := c.cfg.HeadDimK
	C := st.c[h*D*D : (h+1)*D*D]
	if k := p.rotKind(); k != st.kind {
		copy(scratch, C)
		rebasis(scratch[:D*D], st.kind, k, D)
		return scratch[:D*D]
	}
	return C
}

// carried returns st in rotation basis kind, for refining many rows of a
// page of that basis (restores, context shifts): st itself when it is in
// that basis already (or kind is 0: unrotated pages are not refined),
// else every head carried over once — what refineStat would carry for
// each row — into a scratch (KVHeads × HeadDimK² float32s on the Go
// heap, allocated at the first carry) that the next call reuses.
func (c *Cache) carried(st *qstat, kind int) *qstat {
	if st == nil || kind == 0 || kind == st.kind {
		return st
	}
	D := c.cfg.HeadDimK
	n := c.cfg.KVHeads * D * D
	if len(c.qcarry) < n {
		c.qcarry = make([]float32, n)
	}
	out := &qstat{c: c.qcarry[:n], kind: kind, n: st.n}
	copy(out.c, st.c)
	for h := 0; h < c.cfg.KVHeads; h++ {
		rebasis(out.c[h*D*D:(h+1)*D*D], st.kind, kind, D)
	}
	return out
}

// refineKeyRow refines the encoded head row dst (head h of page p,
// encoded from the rotated x) against st, when there is one.
func (c *Cache) refineKeyRow(p *Page, st *qstat, h int, x []float32, dst []byte) {
	if C := c.refineStat(p, st, h, c.qscr); C != nil {
		tensor.RefineRow(p.Type, x, dst, C, keyQueryPasses, c.qce, refineOps)
	}
}
