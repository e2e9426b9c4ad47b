package kvcache

import "fmt"

// ReRope re-rotates the K rows of one head of layer l for a position
// change of delta (rows holds n rows of HeadDimK values, in the model's
// basis: not Hadamard-rotated). The model supplies it: RoPE is the model's.
type ReRope func(layer int, rows []float32, delta int)

// Shift removes positions [keep, keep+discard) of seq (context shift): the
// positions after them move down by discard, their keys re-rotated by RoPE
// for the new positions (reRope, with delta = -discard), values moved as
// they are. When discard is a multiple of the page size, every page after
// the one holding position keep moves as a whole: its values are not
// touched and its keys are re-encoded in place; other pages are rebuilt
// from runs of rows (rows whose page type and rotation do not change are
// copied as stored bytes).
// Quantized keys are re-encoded after the rotation, as llama.cpp's K-shift
// does; with query-aware key encoding (KeyQuery) they are refined against
// seq's query statistic, as a live write or requantization refines them.
//
// A sliding-window layer must still hold every row the next token would
// attend after the shift; if it released one (the kept prefix fell out of
// its window), Shift changes nothing and returns an error; so it does with
// recurrent layers (state.go).
func (c *Cache) Shift(seq, keep, discard int, reRope ReRope) error {
	if c.states != nil {
		// A recurrent state has absorbed the dropped tokens: it cannot
		// follow (context shift and eviction are refused on hybrids).
		return fmt.Errorf("kvcache: a hybrid model's recurrent state cannot drop tokens")
	}
	n := c.Len(seq)
	if keep < 0 || discard <= 0 || keep+discard > n {
		return fmt.Errorf("kvcache: cannot shift %d positions after %d of a sequence of %d", discard, keep, n)
	}
	newN := n - discard
	src := func(q int) int { // old position of new position q
		if q < keep {
			return q
		}
		return q + discard
	}
	P := c.cfg.PageTokens
	for l := range c.seqs[seq] {
		a := c.attn(l)
		ls := &c.seqs[seq][l]
		for q := a.WindowStart(newN); q < newN; q++ {
			if p := src(q) / P; ls.k.pages[p] == nil || ls.v.pages[p] == nil {
				return fmt.Errorf("kvcache: layer %d released positions a shifted context would attend", l)
			}
		}
	}
	for l := range c.seqs[seq] {
		ls := &c.seqs[seq][l]
		kst := c.keyStat(seq, l) // K rows' query statistic, if any
		for side, s := range ls.streams() {
			// Pages from the one holding keep on move or change: shared
			// ones are copied first (copy on write).
			for i := keep / P; i < len(s.pages); i++ {
				c.unshare(s, i)
			}
			old := s.pages
			nPages := (newN + P - 1) / P
			pages := make([]*Page, nPages)
			kept := make(map[*Page]bool)
			for j := range pages {
				lo, hi := j*P, min(j*P+P, newN)
				switch {
				case hi <= keep: // before the removed span: unchanged
					pages[j] = old[j]
				case discard%P == 0 && lo >= keep: // a whole page moves down
					p := old[j+discard/P]
					pages[j] = p
					if p != nil && side == 0 {
						c.reRopeRows(p, l, 0, hi-lo, -discard, reRope, kst)
					}
				default:
					var st *qstat
					if side == 0 {
						st = kst
					}
					pages[j] = c.rebuildPage(old, l, side, lo, hi, src, keep, -discard, reRope, st)
				}
				if pages[j] != nil {
					kept[pages[j]] = true
				}
			}
			for _, p := range old {
				if p != nil && !kept[p] {
					c.freePage(p)
				}
			}
			s.pages = pages
		}
		ls.n = newN
		c.kshadow[seq][l].page = -1 // its rows moved
		c.vshadow[seq][l].page = -1
		ls.lo = 0
		for ls.lo < len(ls.k.pages) && ls.k.pages[ls.lo] == nil {
			ls.lo++
		}
	}
	if rs := c.roles[seq]; len(rs) == n {
		c.roles[seq] = append(rs[:keep], rs[keep+discard:]...)
	} else { // not recorded (cannot happen through Store): prompt
		c.roles[seq] = make([]Role, newN)
	}
	return nil
}

// reRopeRows re-rotates K rows [r0, r1) of every head of page p in place:
// decode, undo the Hadamard rotation, RoPE by delta, rotate back, encode
// (refined against the query statistic st when there is one).
func (c *Cache) reRopeRows(p *Page, l, r0, r1, delta int, reRope ReRope, st *qstat) {
	D, P := c.cfg.HeadDimK, c.cfg.PageTokens
	st = c.carried(st, p.rotKind())
	hb := p.Type.RowSize(D)
	buf := c.cbuf[0][:(r1-r0)*D]
	for h := 0; h < c.cfg.KVHeads; h++ {
		seg := p.mem.b[(h*P+r0)*hb : (h*P+r1)*hb]
		decodeRow(p.Type, seg, buf)
		p.unrotate(buf, D)
		mu, sc := c.chanBuf[:D], c.chanBuf[D:]
		if p.meta != 0 {
			c.fromChan(p, h, buf, r1-r0, D, mu, sc)
		}
		reRope(l, buf, delta)
		if p.meta != 0 {
			c.toChan(p, h, buf, r1-r0, D, mu, sc)
		}
		p.rotate(buf, D)
		encode(p.Type, buf, seg)
		c.refineRows(p, st, h, buf, seg, r1-r0)
	}
}

// refineRows refines n encoded rows of head h of K page p (seg, encoded
// from the rotated rows x) against the query statistic st, if any.
func (c *Cache) refineRows(p *Page, st *qstat, h int, x []float32, seg []byte, n int) {
	if st == nil {
		return
	}
	D, hb := c.cfg.HeadDimK, p.Type.RowSize(c.cfg.HeadDimK)
	for r := 0; r < n; r++ {
		c.refineKeyRow(p, st, h, x[r*D:(r+1)*D], seg[r*hb:(r+1)*hb])
	}
}

// rebuildPage makes the new page holding new positions [lo, hi) of one side
// of layer l, each row taken from old position src(q): in the type and
// rotation of the page the removed span's successor rows come from. Rows
// that moved (old position ≥ keep) of K are re-rotated by delta. It
// returns nil when no source row exists (released pages). K rows
// re-encoded are refined against the query statistic st when there is one.
func (c *Cache) rebuildPage(old []*Page, l, side, lo, hi int, src func(int) int, keep, delta int, reRope ReRope, st *qstat) *Page {
	P := c.cfg.PageTokens
	var tmpl *Page
	for q := hi - 1; q >= lo && tmpl == nil; q-- {
		tmpl = old[src(q)/P]
	}
	if tmpl == nil {
		return nil
	}
	dim := c.headDim(side == 1)
	np := c.allocPage(tmpl.Type, tmpl.Rotated, side == 1)
	st = c.carried(st, np.rotKind())
	if np.meta != 0 {
		c.rebuildChan(np, old, l, side, lo, hi, src, keep, delta, reRope, st)
		return np
	}
	hbD := np.Type.RowSize(dim)
	// Rows come in runs of consecutive positions from one source page
	// (at most three runs per page): each run is copied, or decoded and
	// re-encoded, as one block per head.
	for q := lo; q < hi; {
		sq := src(q)
		end := q + 1
		for end < hi && src(end) == sq+end-q && src(end)/P == sq/P && (end < keep) == (q < keep) {
			end++
		}
		sp := old[sq/P]
		if sp == nil { // released: never attended (checked by Shift)
			q = end
			continue
		}
		moved := q >= keep && side == 0
		hbS := sp.Type.RowSize(dim)
		nr := end - q
		buf := c.cbuf[0][:nr*dim]
		for h := 0; h < c.cfg.KVHeads; h++ {
			from := sp.mem.b[(h*P+sq%P)*hbS : (h*P+sq%P+nr)*hbS]
			to := np.mem.b[(h*P+q%P)*hbD : (h*P+q%P+nr)*hbD]
			if !moved && sp.Type == np.Type && sp.Rotated == np.Rotated {
				copy(to, from)
				continue
			}
			decodeRow(sp.Type, from, buf)
			sp.unrotate(buf, dim)
			if moved {
				reRope(l, buf, delta)
			}
			np.rotate(buf, dim)
			encode(np.Type, buf, to)
			c.refineRows(np, st, h, buf, to, nr)
		}
		q = end
	}
	return np
}

// rebuildChan fills new K page np (with channel statistics) with new
// positions [lo, hi) as rebuildPage does: every row through its raw value
// (the source pages' statistics undone, moved rows re-rotated), then np's
// statistics fitted from them and the rows encoded.
func (c *Cache) rebuildChan(np *Page, old []*Page, l, side, lo, hi int, src func(int) int, keep, delta int, reRope ReRope, st *qstat) {
	P, D := c.cfg.PageTokens, c.headDim(side == 1)
	rowK := c.cfg.KVHeads * D
	raw := make([]float32, (hi-lo)*rowK)
	row := make([]float32, D)
	mu, sc := c.chanBuf[:D], c.chanBuf[D:]
	for q := lo; q < hi; q++ {
		sq := src(q)
		sp := old[sq/P]
		if sp == nil {
			continue
		}
		hb := sp.Type.RowSize(D)
		for h := 0; h < c.cfg.KVHeads; h++ {
			off := (h*P + sq%P) * hb
			decodeRow(sp.Type, sp.mem.b[off:off+hb], row)
			sp.unrotate(row, D)
			if sp.meta != 0 {
				c.fromChan(sp, h, row, 1, D, mu, sc)
			}
			if q >= keep && side == 0 {
				reRope(l, row, delta)
			}
			copy(raw[(q-lo)*rowK+h*D:], row)
		}
	}
	c.initChan(np)
	for h := 0; h < c.cfg.KVHeads; h++ {
		c.fitChan(np, h, raw[h*D:], hi-lo, rowK)
	}
	c.encodeRawRows(np, raw, 0, hi-lo, st)
}
