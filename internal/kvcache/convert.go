package kvcache

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/parallel"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Target describes a conversion of part of the cache to new types.
type Target struct {
	K, V   *tensor.Type // nil: leave that side's type alone
	Rotate *bool        // nil: the cache's rotation setting
	Layers []int        // nil: all layers
	Seqs   []int        // nil: all sequences
}

// PageRef names one page.
type PageRef struct {
	Seq, Layer int
	V          bool
	Index      int
}

// Step is one page conversion of a plan.
type Step struct {
	PageRef
	From, To       tensor.Type
	FromRot, ToRot bool
	Tokens         int // positions the page holds
	BytesBefore    int
	BytesAfter     int
	// Reason says why the page converts (a policy rule's name, or
	// "requantize"), for the converter's accounting and logs.
	Reason string
}

// LayerChange summarises a plan's effect on one layer.
type LayerChange struct {
	Layer                     int
	TypeKBefore, TypeKAfter   string // a type name, or "mixed"
	TypeVBefore, TypeVAfter   string
	BytesKBefore, BytesKAfter int64
	BytesVBefore, BytesVAfter int64
}

// Plan lists the page conversions a target needs (pages already of the
// target type and rotation are left alone) and the per-layer summary,
// without changing anything: it is the dry run.
func (c *Cache) Plan(t Target) ([]Step, []LayerChange, error) {
	layers, seqs, err := c.scope(t)
	if err != nil {
		return nil, nil, err
	}
	if err := c.checkRotateScope(t); err != nil {
		return nil, nil, err
	}
	for _, side := range []struct {
		t   *tensor.Type
		dim int
		kv  string
	}{{t.K, c.cfg.HeadDimK, "K"}, {t.V, c.cfg.HeadDimV, "V"}} {
		if side.t != nil {
			if err := CheckType(*side.t, side.dim); err != nil {
				return nil, nil, fmt.Errorf("type_%s: %w", map[string]string{"K": "k", "V": "v"}[side.kv], err)
			}
		}
	}
	var steps []Step
	var changes []LayerChange
	seen := map[*Page]bool{} // a shared page converts, and counts, once
	for _, l := range layers {
		lc := LayerChange{Layer: l}
		kb, ka := typeSet{}, typeSet{}
		vb, va := typeSet{}, typeSet{}
		for _, s := range seqs {
			ls := &c.seqs[s][l]
			for vi, st := range []*stream{&ls.k, &ls.v} {
				isV := vi == 1
				to, headDim, rowElems := t.K, c.cfg.HeadDimK, c.rowK
				if isV {
					to, headDim, rowElems = t.V, c.cfg.HeadDimV, c.rowV
				}
				for i, p := range st.pages {
					if p == nil || seen[p] {
						continue // released (window layer), or shared and planned
					}
					seen[p] = true
					nt := p.Type
					if to != nil {
						nt = *to
					}
					rot := c.rotateFor(t.Rotate, nt, headDim)
					if to == nil {
						rot = p.Rotated
					}
					after := nt.RowSize(rowElems) * c.cfg.PageTokens
					if isV {
						vb.add(p.Type)
						va.add(nt)
						lc.BytesVBefore += int64(p.Bytes())
						lc.BytesVAfter += int64(after)
					} else {
						kb.add(p.Type)
						ka.add(nt)
						lc.BytesKBefore += int64(p.Bytes())
						lc.BytesKAfter += int64(after)
					}
					if nt == p.Type && rot == p.Rotated {
						continue
					}
					steps = append(steps, Step{
						PageRef: PageRef{Seq: s, Layer: l, V: isV, Index: i},
						From:    p.Type, To: nt, FromRot: p.Rotated, ToRot: rot,
						Tokens:      min(c.cfg.PageTokens, ls.n-i*c.cfg.PageTokens),
						BytesBefore: p.Bytes(), BytesAfter: after,
					})
				}
			}
		}
		// Types new pages of the layer will be written in.
		wk, wv := c.cfg.TypeK[l], c.cfg.TypeV[l]
		if t.K != nil {
			wk = *t.K
		}
		if t.V != nil {
			wv = *t.V
		}
		if len(kb) == 0 {
			kb.add(c.cfg.TypeK[l])
		}
		if len(vb) == 0 {
			vb.add(c.cfg.TypeV[l])
		}
		ka.add(wk)
		va.add(wv)
		lc.TypeKBefore, lc.TypeKAfter = kb.name(), ka.name()
		lc.TypeVBefore, lc.TypeVAfter = vb.name(), va.name()
		changes = append(changes, lc)
	}
	return steps, changes, nil
}

type typeSet map[tensor.Type]bool

func (s typeSet) add(t tensor.Type) { s[t] = true }
func (s typeSet) name() string {
	if len(s) == 1 {
		for t := range s {
			return t.String()
		}
	}
	return "mixed"
}

func (c *Cache) scope(t Target) (layers, seqs []int, err error) {
	layers, seqs = t.Layers, t.Seqs
	if layers == nil {
		for l := 0; l < c.cfg.Layers; l++ {
			layers = append(layers, l)
		}
	}
	if seqs == nil {
		for s := 0; s < c.cfg.Seqs; s++ {
			seqs = append(seqs, s)
		}
	}
	for _, l := range layers {
		if l < 0 || l >= c.cfg.Layers {
			return nil, nil, fmt.Errorf("layer %d out of range (0-%d)", l, c.cfg.Layers-1)
		}
	}
	for _, s := range seqs {
		if s < 0 || s >= c.cfg.Seqs {
			return nil, nil, fmt.Errorf("slot %d out of range (0-%d)", s, c.cfg.Seqs-1)
		}
	}
	if c.states != nil {
		// Recurrent layers have no pages: their state stays f32.
		kept := []int{}
		for _, l := range layers {
			if !c.IsRecurrent(l) {
				kept = append(kept, l)
			}
		}
		layers = kept
	}
	return layers, seqs, nil
}

// checkRotateScope refuses a rotation change scoped to some layers or
// sequences: rotation is a cache-wide setting for new pages, so a scoped
// change would reach every later page of every layer.
func (c *Cache) checkRotateScope(t Target) error {
	if t.Rotate != nil && *t.Rotate != c.cfg.Rotate && (t.Layers != nil || t.Seqs != nil) {
		return fmt.Errorf("rotate: rotation is a cache-wide setting (now %v); change it without layers or slots (rotated and plain pages coexist, so the whole cache converts)", c.cfg.Rotate)
	}
	return nil
}

func (c *Cache) rotateFor(r *bool, t tensor.Type, headDim int) bool {
	rot := c.cfg.Rotate
	if r != nil {
		rot = *r
	}
	return pageRotated(rot, t, headDim)
}

// SetWriteTypes makes the target's types (and rotation) the types new pages
// of its layers are written in: the layers' defaults when the target
// covers all sequences, else per-sequence overrides. Rotation is a
// cache-wide setting.
func (c *Cache) SetWriteTypes(t Target) error {
	layers, seqs, err := c.scope(t)
	if err != nil {
		return err
	}
	if err := c.checkRotateScope(t); err != nil {
		return err
	}
	for _, l := range layers {
		if t.K != nil {
			if t.Seqs == nil {
				c.cfg.TypeK[l] = *t.K
			}
			for _, s := range seqs {
				if c.seqK[s] != nil || t.Seqs != nil {
					c.overrideK(s)[l] = *t.K
				}
			}
		}
		if t.V != nil {
			if t.Seqs == nil {
				c.cfg.TypeV[l] = *t.V
			}
			for _, s := range seqs {
				if c.seqV[s] != nil || t.Seqs != nil {
					c.overrideV(s)[l] = *t.V
				}
			}
		}
	}
	if t.Rotate != nil {
		c.cfg.Rotate = *t.Rotate
	}
	return nil
}

// ConvertPage converts one page as a plan step says (if the page still is
// as planned), allocating the new page, converting head by head, and
// freeing the old page at once. It returns whether it converted.
func (c *Cache) ConvertPage(st Step) bool { return c.convertPage(st, 0) }

// ConvertPages converts several pages (distinct ones, as a plan lists
// them) in parallel on the pool; done[i] reports whether step i converted.
func (c *Cache) ConvertPages(steps []Step, pool *parallel.Pool, done []bool) {
	t := &convertTask{c: c, steps: steps, done: done}
	pool.Run(len(steps), t)
}

type convertTask struct {
	c     *Cache
	steps []Step
	done  []bool
}

func (t *convertTask) Do(i, worker int) { t.done[i] = t.c.convertPage(t.steps[i], worker) }

func (c *Cache) convertPage(st Step, worker int) bool {
	if st.Seq >= c.cfg.Seqs || st.Layer >= c.cfg.Layers {
		return false
	}
	ls := &c.seqs[st.Seq][st.Layer]
	s, headDim := &ls.k, c.cfg.HeadDimK
	if st.V {
		s, headDim = &ls.v, c.cfg.HeadDimV
	}
	if st.Index >= len(s.pages) {
		return false // truncated since planned
	}
	old := s.pages[st.Index]
	if old == nil || old.Type != st.From || old.Rotated != st.FromRot || (st.To == st.From && st.ToRot == st.FromRot) {
		return false
	}
	// The page is converted in place (new memory, then the old freed), so
	// every sequence sharing it sees the new type.
	np := c.allocPage(st.To, st.ToRot, st.V)
	rows := min(c.cfg.PageTokens, ls.n-st.Index*c.cfg.PageTokens)
	var st2 *qstat
	if !st.V {
		st2 = c.keyStat(st.Seq, st.Layer)
	}
	c.convertInto(old, np, headDim, rows, c.cbuf[worker%len(c.cbuf)], c.chanScratch(worker), st2)
	c.account(old.Type, -int64(len(old.mem.b)), -1)
	old.mem.free()
	old.Type, old.Rotated, old.mem, old.meta = np.Type, np.Rotated, np.mem, np.meta
	return true
}

// convertInto re-encodes every row of src into dst, a head's block of
// PageTokens rows at a time: decode, undo src's rotation unless dst is
// rotated too, rotate for dst unless src already was, encode. buf holds
// PageTokens×headDim floats. When either page has channel statistics
// (K pages), the rows go through their raw values, and dst's statistics
// are fitted from the first rows rows (those holding positions). With a
// query statistic st (KeyQuery), dst's K rows are refined against it.
func (c *Cache) convertInto(src, dst *Page, headDim, rows int, buf, cs []float32, st *qstat) {
	P := c.cfg.PageTokens
	hbS, hbD := src.Type.RowSize(headDim)*P, dst.Type.RowSize(headDim)*P
	buf = buf[:P*headDim]
	nHeads := (len(src.mem.b) - metaLen(src)) / hbS
	raw := src.meta != 0 || dst.meta != 0
	mu, sc := cs[:headDim], cs[headDim:2*headDim]
	var qscr, ce []float32 // query refinement scratch (this worker's)
	for h := 0; h < nHeads; h++ {
		decodeRow(src.Type, src.mem.b[h*hbS:(h+1)*hbS], buf)
		if raw {
			src.unrotate(buf, headDim)
			if src.meta != 0 {
				c.fromChan(src, h, buf, P, headDim, mu, sc)
			}
			if dst.meta != 0 {
				c.fitChan(dst, h, buf, max(rows, 1), headDim)
				c.toChan(dst, h, buf, P, headDim, mu, sc)
			}
			dst.rotate(buf, headDim)
		} else {
			if src.rotKind() != dst.rotKind() {
				src.unrotate(buf, headDim)
				dst.rotate(buf, headDim)
			}
		}
		encode(dst.Type, buf, dst.mem.b[h*hbD:(h+1)*hbD])
		if st != nil {
			if qscr == nil {
				qscr, ce = make([]float32, headDim*headDim), make([]float32, 4*headDim)
			}
			if C := c.refineStat(dst, st, h, qscr); C != nil {
				hb := dst.Type.RowSize(headDim)
				for r := 0; r < rows; r++ {
					tensor.RefineRow(dst.Type, buf[r*headDim:(r+1)*headDim], dst.mem.b[h*hbD+r*hb:h*hbD+(r+1)*hb], C, keyQueryPasses, ce, refineOps)
				}
			}
		}
	}
}

func metaLen(p *Page) int {
	if p.meta == 0 {
		return 0
	}
	return len(p.mem.b) - p.meta
}

// Estimate returns, for every cache type, the bytes the cache's current
// contents would take in that type (same for K and V) and the bytes a
// full context of every sequence would take.
func (c *Cache) Estimate() map[tensor.Type][2]int64 {
	out := map[tensor.Type][2]int64{}
	pages := int64(0)
	for s := range c.seqs {
		for l := range c.seqs[s] {
			for i, p := range c.seqs[s][l].k.pages { // shared pages once
				if p != nil && (p.shared == 0 || c.Canonical(PageRef{Seq: s, Layer: l, Index: i}).Seq == s) {
					pages++
				}
			}
		}
	}
	fullPages := int64(0)
	for l := 0; l < c.cfg.Layers; l++ {
		fullPages += int64(c.maxPages(l, c.cfg.Ctx)) * int64(c.cfg.Seqs)
	}
	for _, t := range Types {
		if CheckType(t, c.cfg.HeadDimK) != nil || CheckType(t, c.cfg.HeadDimV) != nil {
			continue
		}
		perPage := int64(c.cfg.PageBytes(t, false) + c.cfg.PageBytes(t, true))
		out[t] = [2]int64{pages * perPage, fullPages * perPage}
	}
	return out
}

// Capacity returns the bytes a full context of every sequence takes at
// each sequence's current write types (a sliding-window layer holds its
// window's pages): the sum of CapacityByType.
func (c *Cache) Capacity() int64 {
	var b int64
	for _, v := range c.CapacityByType() {
		b += v
	}
	return b
}

// CapacityByType returns Capacity split by element type: each sequence's
// full context at its own write types per layer and K/V (a slot-scoped
// requantization or a policy's per-sequence types count for that sequence
// only).
func (c *Cache) CapacityByType() map[tensor.Type]int64 {
	out := map[tensor.Type]int64{}
	for s := 0; s < c.cfg.Seqs; s++ {
		for l := 0; l < c.cfg.Layers; l++ {
			tk, tv := c.WriteTypes(s, l)
			pages := int64(c.maxPages(l, c.cfg.Ctx))
			out[tk] += int64(c.cfg.PageBytes(tk, false)) * pages
			out[tv] += int64(c.cfg.PageBytes(tv, true)) * pages
		}
	}
	return out
}

func (c *Cache) overrideK(s int) []tensor.Type {
	if c.seqK[s] == nil {
		c.seqK[s] = append([]tensor.Type(nil), c.cfg.TypeK...)
	}
	return c.seqK[s]
}

func (c *Cache) overrideV(s int) []tensor.Type {
	if c.seqV[s] == nil {
		c.seqV[s] = append([]tensor.Type(nil), c.cfg.TypeV...)
	}
	return c.seqV[s]
}
