package kvcache

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Repacking a sequence file (ReadSeqAs with another page size, types to
// convert to, or other channel statistics settings): every position's
// rows are decoded from the file's pages and written into new pages of
// this cache, one new page at a time, exactly as a live requantization
// (convertInto) would make them from the same pages:
//
//   - A row of a file page with channel statistics (key or value
//     channels) is decoded, un-rotated and taken through that page's μ
//     (and s): its raw values.
//   - A new page with channel statistics gets them fitted from all its
//     rows (raw: un-rotated first), then each row is transformed, rotated
//     and encoded (encodeRawRows).
//   - A new page without them takes each row in the basis it comes in
//     when that is the page's rotation, else un-rotated and rotated for
//     the page (a ggml page's H rows into a codebook page's H·S); raw rows
//     are rotated for the page.
//   - When the page sizes match, a file page whose type, rotation and
//     statistics layout are what the new page would have (or, without a
//     type asked for, whose layout is the cache's) is kept byte for byte,
//     as a live requantization skips pages already at the target.
//
// With query-aware key encoding (KeyQuery), K rows are refined against
// the query statistic seq holds when it is restored (the restore keeps
// it: it sums the slot's past queries, as Truncate keeps it), exactly as
// a live requantization refines them; a sequence that holds none yet (a
// fresh or emptied slot) has its keys encoded by squared error alone,
// and its statistic starts with the next token evaluated.

// readRepacked reads the pages of a sequence file (after its header:
// filePage-token pages, n positions; codebook pages of version fileCB;
// channel statistics per fileChan and fileVC) into seq: see ReadSeqAs.
func (c *Cache) readRepacked(seq int, br io.Reader, n, filePage int, fileCB uint32, fileChan KeyChannels, fileVC bool, o RestoreOptions) (int, error) {
	var err error
	get := func() uint32 {
		var v uint32
		if err == nil {
			err = binary.Read(br, binary.LittleEndian, &v)
		}
		return v
	}
	// The file's pages are laid out as a cache of its own settings.
	fcfg := c.cfg
	fcfg.PageTokens, fcfg.KeyChannels, fcfg.ValueChannels = filePage, fileChan, fileVC
	P := c.cfg.PageTokens
	nFile := (n + filePage - 1) / filePage
	fresh := make([]layerSeq, c.cfg.Layers)
	fail := func(e error) (int, error) {
		for l := range fresh {
			for _, s := range fresh[l].streams() {
				for _, p := range s.pages {
					if p != nil {
						c.freePage(p)
					}
				}
			}
		}
		return 0, e
	}
	rowMax := max(c.rowK, c.rowV)
	pend := make([]float32, P*rowMax) // rows of the new page being built
	var st *qstat                     // K rows' query statistic (KeyQuery)
	kinds := make([]int8, P)          // each pending row's rotation kind (Page.rotKind); rawRow: raw
	var pageBuf []byte
	var heads []float32
	mu, sc := make([]float32, max(c.cfg.HeadDimK, c.cfg.HeadDimV)), make([]float32, max(c.cfg.HeadDimK, c.cfg.HeadDimV))
	for l := range fresh {
		ls := &fresh[l]
		for si, s := range ls.streams() {
			v := si == 1
			rowElems, headDim, want := c.rowK, c.cfg.HeadDimK, o.want(l, false)
			if v {
				rowElems, headDim, want = c.rowV, c.cfg.HeadDimV, o.want(l, true)
			}
			nHeads := rowElems / headDim
			st = nil
			if !v {
				st = c.keyStat(seq, l)
			}
			var pendType tensor.Type
			pendRows := 0
			flush := func() {
				if pendRows > 0 {
					s.pages = append(s.pages, c.newPage(pendType, v))
					c.packRows(s.pages[len(s.pages)-1], pend[:pendRows*rowElems], kinds[:pendRows], st)
					pendRows = 0
				}
			}
			if cnt := int(get()); err == nil && cnt != nFile {
				return fail(fmt.Errorf("sequence file: layer %d has %d pages for %d positions", l, cnt, n))
			}
			for i := 0; i < nFile && err == nil; i++ {
				t := tensor.Type(get())
				rot := get()
				size := int(get())
				if err != nil {
					break
				}
				if t == released {
					return fail(fmt.Errorf("sequence file: layer %d released window pages; it restores only into %d-token pages of its own types", l, filePage))
				}
				if e := CheckType(t, headDim); e != nil {
					return fail(fmt.Errorf("sequence file: %w", e))
				}
				if t.IsCodebook() && fileCB != tensor.CodebookVersion {
					return fail(fmt.Errorf("sequence file: its %s pages were written with codebook version %d; this kvserve reads version %d", t, fileCB, tensor.CodebookVersion))
				}
				if size != fcfg.PageBytes(t, v) || rot > 1 {
					return fail(fmt.Errorf("sequence file: page of %d bytes does not match type %s", size, t))
				}
				pt := t
				if want != nil {
					pt = *want
				}
				if filePage == P && pt == t && fcfg.chanMode(t, v) == c.cfg.chanMode(t, v) &&
					(want == nil || (rot == 1) == pageRotated(c.cfg.Rotate, t, headDim)) {
					// Already what the new page would be: kept as is.
					flush()
					p := c.allocPage(t, rot == 1, v)
					s.pages = append(s.pages, p)
					if _, err = io.ReadFull(br, p.mem.b); err != nil {
						break
					}
					continue
				}
				if cap(pageBuf) < size {
					pageBuf = make([]byte, size)
				}
				buf := pageBuf[:size]
				if _, err = io.ReadFull(br, buf); err != nil {
					break
				}
				// Decode the page head by head (head-major); rows of a
				// page with statistics are taken to their raw values.
				if need := filePage * rowElems; cap(heads) < need {
					heads = make([]float32, need)
				}
				hb := t.RowSize(headDim) * filePage
				kind := int8((&Page{Type: t, Rotated: rot == 1}).rotKind())
				mode := fcfg.chanMode(t, v)
				for h := 0; h < nHeads; h++ {
					hx := heads[h*filePage*headDim : (h+1)*filePage*headDim]
					decodeRow(t, buf[h*hb:(h+1)*hb], hx)
					if mode != KeyChannelsOff {
						unrotateKind(int(kind), hx, headDim)
						readStats(buf[hb*nHeads:], mode, c.cfg.KVHeads, h, headDim, mu, sc)
						unchan(hx, filePage, headDim, mu[:headDim], sc[:headDim])
					}
				}
				if mode != KeyChannelsOff {
					kind = rawRow
				}
				for q := 0; q < filePage && i*filePage+q < n; q++ {
					pos := i*filePage + q
					if pos%P == 0 {
						flush()
						pendType = pt
					}
					r := pos % P
					row := pend[r*rowElems : (r+1)*rowElems]
					for h := 0; h < nHeads; h++ {
						copy(row[h*headDim:(h+1)*headDim], heads[(h*filePage+q)*headDim:(h*filePage+q+1)*headDim])
					}
					kinds[r] = kind
					pendRows = r + 1
				}
			}
			if err != nil {
				break
			}
			flush()
		}
		ls.n = n
	}
	if err != nil {
		return fail(fmt.Errorf("sequence file truncated: %w", err))
	}
	c.clearForRestore(seq)
	copy(c.seqs[seq], fresh)
	for l := range c.kshadow[seq] {
		c.kshadow[seq][l].page = -1
		c.vshadow[seq][l].page = -1
	}
	c.roles[seq] = make([]Role, n) // a restored sequence's tokens count as prompt
	return n, nil
}

// rawRow marks a pending row holding raw values: un-rotated, with no
// channel transform.
const rawRow = -1

// packRows encodes the len(kinds) rows x (row r at x[r*rowElems:], in
// the basis kinds[r] says) into rows 0.. of the new page p, K rows
// refined against the query statistic st when there is one: see the
// comment at the top of this file. x is changed.
func (c *Cache) packRows(p *Page, x []float32, kinds []int8, st *qstat) {
	D := c.headDim(p.side == 1)
	st = c.carried(st, p.rotKind())
	rowE := len(x) / len(kinds)
	if p.meta != 0 {
		for r, k := range kinds {
			if k > 0 {
				unrotateKind(int(k), x[r*rowE:(r+1)*rowE], D)
			}
		}
		for h := 0; h*D < rowE; h++ {
			c.fitChan(p, h, x[h*D:], len(kinds), rowE)
		}
		c.encodeRawRows(p, x, 0, len(kinds), st)
		return
	}
	hb := p.Type.RowSize(D)
	P := c.cfg.PageTokens
	dk := p.rotKind()
	for r, k := range kinds {
		row := x[r*rowE : (r+1)*rowE]
		if k == rawRow {
			k = 0
		}
		if int(k) != dk {
			unrotateKind(int(k), row, D)
			rotateKind(dk, row, D)
		}
		for h := 0; h*D < rowE; h++ {
			off := (h*P + r) * hb
			encode(p.Type, row[h*D:(h+1)*D], p.mem.b[off:off+hb])
			c.refineKeyRow(p, st, h, row[h*D:(h+1)*D], p.mem.b[off:off+hb])
		}
	}
}
