package kvcache

import "github.com/kvserve/kvserve/internal/tensor"

// Query-aware key encoding (Config.KeyQuery, --cache-key-encode query;
// issue 18, fourth round). A key's quantization error e costs attention
// (q·e)², whose mean over the queries is eᵀCe with C = E[q qᵀ]; the
// nearest-level indices minimise |e|² instead. With KeyQuery on, the cache
// keeps, per sequence, layer and KV head, the running sum of r rᵀ over
// the queries r = H·S·q seen so far (in the codebook pages' rotated basis,
// the g query heads sharing the KV head, every token observed in order),
// and each codebook, q4_0 or q5_0 K row it writes to a rotated page is
// refined against it (H·q for pages rotated by H alone)
// (tensor.RefineRow). Only the encoder changes: the format, the
// decoders and attention are the same, and a page written with it reads
// back in any cache.
//
// Properties: a row is refined with the statistic of the moment it is
// encoded; written once (key channels off), that is the queries up to its
// own token whatever the batching, but rows re-encoded at key-channel
// refits make results depend on how a prompt was split into batches (as
// key channels already do); the statistic is not rolled back by Truncate (only
// emptying the sequence resets it); context shifts and slot restores
// encode by squared error alone (they have no queries), while
// conversions (requantize, policies) refine with the statistic of the
// sequence named by the step (a shared page: its first holder).

// keyQueryPasses bounds the greedy sweeps per row.
const keyQueryPasses = 4

type qstat struct {
	c [2][]float64 // KVHeads × D × D sums of r rᵀ, r = H·S·q ([0], codebook pages) and H·q ([1], other rotated pages)
	n int
}

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
	if !canRotate(D) || len(q)%(H*D) != 0 {
		return
	}
	if c.qstats == nil {
		c.qstats = make([][]qstat, c.cfg.Seqs)
	}
	if c.qstats[seq] == nil {
		c.qstats[seq] = make([]qstat, c.cfg.Layers)
	}
	st := &c.qstats[seq][l]
	if st.c[0] == nil {
		st.c[0], st.c[1] = make([]float64, H*D*D), make([]float64, H*D*D)
	}
	g := len(q) / (H * D)
	r := c.qtmp[:D]
	for basis, kind := range [2]int{2, 1} {
		for h := 0; h < H; h++ {
			C := st.c[basis][h*D*D : (h+1)*D*D]
			for j := 0; j < g; j++ {
				copy(r, q[(h*g+j)*D:(h*g+j+1)*D])
				rotateKind(kind, r, D)
				for a := 0; a < D; a++ {
					ra := float64(r[a])
					row := C[a*D : a*D+D]
					for b := range row {
						row[b] += ra * float64(r[b])
					}
				}
			}
		}
	}
	st.n++
}

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

// resetKeyStats empties seq's query statistics.
func (c *Cache) resetKeyStats(seq int) {
	if c.qstats == nil || c.qstats[seq] == nil {
		return
	}
	for l := range c.qstats[seq] {
		st := &c.qstats[seq][l]
		clear(st.c[0])
		clear(st.c[1])
		st.n = 0
	}
}

// refineKeyRow refines the encoded codebook head row dst (head h of page
// p, encoded from the rotated x) against st, when there is one.
func (c *Cache) refineKeyRow(p *Page, st *qstat, h int, x []float32, dst []byte, ce []float64) {
	if st == nil || p.side != 0 || !tensor.Refinable(p.Type) || p.rotKind() == 0 {
		return
	}
	basis := 0
	if p.rotKind() == 1 {
		basis = 1
	}
	if _, m := c.pageChan(p); m == KeyChannelsScale { // scores use q⊙s: another C
		return
	}
	D := len(x)
	tensor.RefineRow(p.Type, x, dst, st.c[basis][h*D*D:(h+1)*D*D], keyQueryPasses, ce[:D])
}
