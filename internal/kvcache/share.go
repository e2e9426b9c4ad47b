package kvcache

// Shared prefix pages. Sequences whose tokens share a prefix can hold the
// same full pages of it: SharePrefix makes a sequence point at another's
// first pages instead of computing and storing them again. A page counts
// its extra holders (Page.shared); its bytes are accounted once, when it
// is allocated and when its last holder lets it go, so the cache's bytes
// stay exact. Sharing is copy-on-write: a sequence that writes into a
// shared page (after rolling back into it) or shifts it gets its own copy
// first. Conversions change the page itself, so every holder sees the new
// type: a shared page is at the lowest type any holder's conversion asked
// for, which is how policies compose anyway (the stricter wins).

// SharePrefix makes the empty sequence dst hold the first pages pages of
// src (every layer, K and V) as shared pages, with their tokens' roles,
// and returns the positions dst now holds (pages × PageTokens), or 0 when
// it cannot: dst is not empty, src holds fewer positions, or a page in
// range was released (sliding-window layers).
func (c *Cache) SharePrefix(dst, src, pages int) int {
	P := c.cfg.PageTokens
	n := pages * P
	if dst == src || pages <= 0 || c.Len(dst) != 0 || c.Len(src) < n {
		return 0
	}
	for l := range c.seqs[src] {
		ls := &c.seqs[src][l]
		for _, s := range ls.streams() {
			if len(s.pages) < pages {
				return 0
			}
			for _, p := range s.pages[:pages] {
				if p == nil {
					return 0
				}
			}
		}
	}
	for l := range c.seqs[src] {
		from, to := &c.seqs[src][l], &c.seqs[dst][l]
		for side, s := range from.streams() {
			d := to.streams()[side]
			d.pages = append(d.pages[:0], s.pages[:pages]...)
			for _, p := range d.pages {
				p.shared++
			}
		}
		to.n, to.lo = n, 0
	}
	for l := range c.kshadow[dst] { // no page of dst is being written
		c.kshadow[dst][l].page = -1
	}
	c.roles[dst] = append(c.roles[dst][:0], c.roles[src][:n]...)
	c.wrole[dst] = RolePrompt
	return n
}

// unshare gives stream s its own copy of page i when the page is shared.
func (c *Cache) unshare(s *stream, i int) {
	p := s.pages[i]
	if p == nil || p.shared == 0 {
		return
	}
	np := &Page{Type: p.Type, Rotated: p.Rotated, mem: allocBlock(len(p.mem.b)), meta: p.meta}
	copy(np.mem.b, p.mem.b)
	c.account(np.Type, int64(len(np.mem.b)), 1)
	p.shared--
	s.pages[i] = np
}

// Holders returns how many sequences hold a page (1: not shared; 0: no
// such page).
func (c *Cache) Holders(r PageRef) int {
	p := c.page(r)
	if p == nil {
		return 0
	}
	return p.shared + 1
}

// Canonical returns the reference of a page through its first holder (the
// lowest sequence holding the same page at the same place): one name per
// page, so a plan converts a shared page once and counts its bytes once.
func (c *Cache) Canonical(r PageRef) PageRef {
	p := c.page(r)
	if p == nil || p.shared == 0 {
		return r
	}
	for s := 0; s < r.Seq; s++ {
		q := r
		q.Seq = s
		if c.page(q) == p {
			return q
		}
	}
	return r
}

// page returns the page a reference names (nil: none).
func (c *Cache) page(r PageRef) *Page {
	if r.Seq < 0 || r.Seq >= c.cfg.Seqs || r.Layer < 0 || r.Layer >= c.cfg.Layers {
		return nil
	}
	ls := &c.seqs[r.Seq][r.Layer]
	s := &ls.k
	if r.V {
		s = &ls.v
	}
	if r.Index < 0 || r.Index >= len(s.pages) {
		return nil
	}
	return s.pages[r.Index]
}

// SharedBytes returns the bytes and the number of the pages held by more
// than one sequence (each counted once).
func (c *Cache) SharedBytes() (bytes int64, pages int) {
	seen := map[*Page]bool{}
	for s := range c.seqs {
		for l := range c.seqs[s] {
			for _, st := range c.seqs[s][l].streams() {
				for _, p := range st.pages {
					if p != nil && p.shared > 0 && !seen[p] {
						seen[p] = true
						bytes += int64(p.Bytes())
						pages++
					}
				}
			}
		}
	}
	return bytes, pages
}
