package kvcache

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Sequence files (WriteSeq / ReadSeq) hold one sequence's pages exactly as
// stored (type, rotation, bytes), so a restore reproduces the cache bit for
// bit without re-evaluating any token:
//
//	magic "KVSSEQ05", codebook version (tensor.CodebookVersion), channel
//	statistics (Config.KeyChannels, plus 256 when Config.ValueChannels), layers, kv heads, head dim K, head
//	dim V, page tokens, tokens (uint32 each); then per layer, K then V:
//	page count, and per page type, rotated flag, byte length, bytes (a K
//	page's channel statistics included). A page a sliding-window layer
//	released is written as type 0xFFFFFFFF with no bytes. Version 02 files
//	(without the two version fields: no codebook types, key channels off)
//	and 01 files (which predate window layers) are read too. A file whose
//	codebook pages were written with other codebook levels is refused; one
//	written with other key/value channel settings is converted (repack.go).
//
// Version 05 ends with the sequence's recurrent state (hybrid models):
// floats per sequence (0 for attention-only models), then, when not 0,
// the tokens it has absorbed and its f32 values (recurrent layers have no
// pages), the number of state checkpoints and each one's position and
// values. Version 04 files are read too, into attention-only caches.
//
// Integrity (checksums) and the token list are the caller's business.
const (
	maxFilePage = 1 << 16 // the largest page size a file may declare
	seqMagic    = "KVSSEQ05"
	seqMagicV4  = "KVSSEQ04"
	seqMagicV2  = "KVSSEQ02"
	seqMagicV1  = "KVSSEQ01"
	released    = 0xFFFFFFFF
)

// WriteSeq writes seq's pages to w.
func (c *Cache) WriteSeq(seq int, w io.Writer) error { return c.WriteSeqAs(seq, w, nil, nil) }

// WriteSeqAs is WriteSeq with pages converted down on the way: a K (V)
// page whose type takes more bytes than k (v) is written converted to it
// (rotated as the cache rotates new pages of that type), as a live
// requantization would make it; the cache itself is not changed. nil: as
// stored. The disk tier spills this way (--cache-spill-type).
func (c *Cache) WriteSeqAs(seq int, w io.Writer, toK, toV *tensor.Type) error {
	if c.states != nil && c.states[seq].pos != c.Len(seq) {
		return fmt.Errorf("sequence %d: its recurrent state holds %d tokens, its pages %d: nothing consistent to save", seq, c.states[seq].pos, c.Len(seq))
	}
	bw := bufio.NewWriter(w)
	put := func(v uint32) { binary.Write(bw, binary.LittleEndian, v) }
	bw.WriteString(seqMagic)
	chans := int(c.cfg.KeyChannels)
	if c.cfg.ValueChannels {
		chans |= 1 << 8
	}
	for _, v := range []int{tensor.CodebookVersion, chans, c.cfg.Layers, c.cfg.KVHeads, c.cfg.HeadDimK, c.cfg.HeadDimV, c.cfg.PageTokens, c.Len(seq)} {
		put(uint32(v))
	}
	for l := range c.seqs[seq] {
		ls := &c.seqs[seq][l]
		for _, s := range ls.streams() {
			put(uint32(len(s.pages)))
			for i, p := range s.pages {
				if p == nil {
					put(released)
					put(0)
					put(0)
					continue
				}
				scratch := false
				if to := [2]*tensor.Type{toK, toV}[p.side]; to != nil && c.smaller(*to, p) {
					var st *qstat // K rows refined as a live requantization refines them
					if p.side == 0 {
						st = c.keyStat(seq, l)
					}
					p, scratch = c.scratchConverted(p, *to, max(1, min(c.cfg.PageTokens, ls.n-i*c.cfg.PageTokens)), st), true
				}
				put(uint32(p.Type))
				rot := uint32(0)
				if p.Rotated {
					rot = 1
				}
				put(rot)
				put(uint32(len(p.mem.b)))
				bw.Write(p.mem.b) // copied or written before it returns
				if scratch {
					p.mem.free()
				}
			}
		}
	}
	put(uint32(c.stateN))
	if c.states != nil {
		put(uint32(c.states[seq].pos))
		binary.Write(bw, binary.LittleEndian, c.states[seq].live)
		var cps []*checkpoint
		for i := range c.states[seq].ckpts {
			if cp := &c.states[seq].ckpts[i]; cp.layers == c.nRecurrent {
				cps = append(cps, cp)
			}
		}
		put(uint32(len(cps)))
		for _, cp := range cps {
			put(uint32(cp.pos))
			binary.Write(bw, binary.LittleEndian, cp.data)
		}
	}
	return bw.Flush()
}

// smaller reports whether a page of type t takes fewer bytes than p.
func (c *Cache) smaller(t tensor.Type, p *Page) bool {
	return c.cfg.PageBytes(t, p.side == 1) < len(p.mem.b)
}

// scratchConverted returns an uncounted copy of p converted to t (the
// caller frees it); rows is how many of its rows hold positions (channel
// statistics are fitted from those; K rows are refined against the query
// statistic st when there is one).
func (c *Cache) scratchConverted(p *Page, t tensor.Type, rows int, st *qstat) *Page {
	v := p.side == 1
	hd := c.headDim(v)
	np := c.uncountedPage(t, c.rotateFor(nil, t, hd), v)
	c.convertInto(p, np, hd, rows, c.cbuf[0], c.chanScratch(0), st)
	return np
}

// RestoreOptions say how ReadSeqAs shapes what it reads.
type RestoreOptions struct {
	// K, V: convert every page to this type (nil: keep the file's types).
	K, V *tensor.Type
	// LayersK, LayersV: convert each layer's pages to its own type
	// (indexed by layer; they take precedence over K and V; nil: K, V).
	LayersK, LayersV []tensor.Type
}

// want returns the type layer l's pages of a side are converted to (nil:
// the file's).
func (o RestoreOptions) want(l int, v bool) *tensor.Type {
	ls, t := o.LayersK, o.K
	if v {
		ls, t = o.LayersV, o.V
	}
	if l < len(ls) {
		return &ls[l]
	}
	return t
}

// converts reports whether any page is to be converted.
func (o RestoreOptions) converts() bool {
	return o.K != nil || o.V != nil || len(o.LayersK) > 0 || len(o.LayersV) > 0
}

// ReadSeq replaces seq's contents with pages written by WriteSeq and
// returns the number of positions restored. The whole file is read and
// checked before seq changes: on any error seq keeps what it held.
func (c *Cache) ReadSeq(seq int, r io.Reader) (n int, err error) {
	return c.ReadSeqAs(seq, r, RestoreOptions{})
}

// ReadSeqAs is ReadSeq for a file saved with any page size, converting
// pages to the types asked for: the layers, KV heads and head dimensions
// must match, and when the page size matches and no type is asked for,
// the pages are restored exactly as saved. Otherwise every position's
// rows are decoded from the file's pages and written into this cache's
// pages (repacked) — in the type asked for, else in the type of the file
// page the new page's first position comes from — rotated per the
// cache's setting (rows already rotated in the file stay in that basis,
// so a restore converts exactly as a live requantization does). Channel
// statistics (key and value channels) are converted as a live
// requantization converts them: rows are decoded through the file page's
// statistics and the new page's are fitted from its rows; a file written
// with other channel settings than the cache's is converted so too (types
// as saved unless asked). Files whose window layers released pages, and
// hybrid models' slots, restore only as saved.
func (c *Cache) ReadSeqAs(seq int, r io.Reader, o RestoreOptions) (n int, err error) {
	br := bufio.NewReader(r)
	get := func() uint32 {
		var v uint32
		if err == nil {
			err = binary.Read(br, binary.LittleEndian, &v)
		}
		return v
	}
	magic := make([]byte, len(seqMagic))
	if _, err := io.ReadFull(br, magic); err != nil || (string(magic) != seqMagic && string(magic) != seqMagicV4 && string(magic) != seqMagicV2 && string(magic) != seqMagicV1) {
		return 0, errors.New("not a kvserve sequence file")
	}
	if c.states != nil && string(magic) != seqMagic {
		return 0, errors.New("sequence file predates recurrent state (version 05): it cannot restore a hybrid model's slot")
	}
	fileCB, fileChan, fileVC := uint32(0), KeyChannelsOff, false
	if string(magic) == seqMagic || string(magic) == seqMagicV4 {
		fileCB = get()
		ch := get()
		fileChan, fileVC = KeyChannels(ch&0xff), ch>>8&1 == 1
	}
	shape := []int{c.cfg.Layers, c.cfg.KVHeads, c.cfg.HeadDimK, c.cfg.HeadDimV}
	for i, want := range shape {
		if got := int(get()); err == nil && got != want {
			return 0, fmt.Errorf("sequence file was saved from a different cache shape (field %d: %d, this cache %d)", i, got, want)
		}
	}
	filePage := int(get())
	n = int(get())
	if err != nil {
		return 0, fmt.Errorf("sequence file truncated: %w", err)
	}
	if n > c.cfg.Ctx {
		return 0, fmt.Errorf("sequence file holds %d positions, more than the context of %d", n, c.cfg.Ctx)
	}
	for _, side := range []struct {
		t   *tensor.Type
		ls  []tensor.Type
		dim int
		kv  string
	}{{o.K, o.LayersK, c.cfg.HeadDimK, "k"}, {o.V, o.LayersV, c.cfg.HeadDimV, "v"}} {
		if side.t != nil {
			if e := CheckType(*side.t, side.dim); e != nil {
				return 0, fmt.Errorf("type_%s: %w", side.kv, e)
			}
		}
		if len(side.ls) > 0 && len(side.ls) != c.cfg.Layers {
			return 0, fmt.Errorf("type_%s: %d per-layer types for %d layers", side.kv, len(side.ls), c.cfg.Layers)
		}
		for l, t := range side.ls {
			if e := CheckType(t, side.dim); e != nil {
				return 0, fmt.Errorf("type_%s, layer %d: %w", side.kv, l, e)
			}
		}
	}
	if fileChan > KeyChannelsScale {
		return 0, fmt.Errorf("sequence file: key channels mode %d unknown", fileChan)
	}
	// Pages of another channel statistics layout are converted (hybrid
	// models' slots restore only as saved: refused below, page by page).
	otherChans := fileChan != c.cfg.KeyChannels || fileVC != c.cfg.ValueChannels
	if filePage != c.cfg.PageTokens || o.converts() || (otherChans && c.states == nil) {
		if c.states != nil {
			return 0, fmt.Errorf("sequence file: a hybrid model's slot restores only into %d-token pages of its own types", filePage)
		}
		if filePage <= 0 || filePage > maxFilePage {
			return 0, fmt.Errorf("sequence file: %d-token pages", filePage)
		}
		return c.readRepacked(seq, br, n, filePage, fileCB, fileChan, fileVC, o)
	}
	nPages := (n + c.cfg.PageTokens - 1) / c.cfg.PageTokens
	fresh := make([]layerSeq, c.cfg.Layers)
	defer func() {
		if err != nil { // free what was read
			for l := range fresh {
				for _, s := range fresh[l].streams() {
					for _, p := range s.pages {
						if p != nil {
							c.freePage(p)
						}
					}
				}
			}
		}
	}()
	for l := range fresh {
		ls := &fresh[l]
		// A window layer's released pages lead; the token at n must find
		// every page it attends.
		lo := -1
		want := nPages
		if c.IsRecurrent(l) {
			want = 0 // its state comes at the end
		}
		for si, s := range ls.streams() {
			headDim := c.headDim(si == 1)
			if cnt := int(get()); err == nil && cnt != want {
				err = fmt.Errorf("sequence file: layer %d has %d pages for %d positions", l, cnt, n)
				return 0, err
			}
			for i := 0; i < want && err == nil; i++ {
				t := tensor.Type(get())
				rot := get()
				size := int(get())
				if err != nil {
					break
				}
				if t == released {
					if rot != 0 || size != 0 || (i > 0 && s.pages[i-1] != nil) || c.attn(l).Window <= 0 || i*c.cfg.PageTokens+c.cfg.PageTokens > c.attn(l).WindowStart(n) {
						err = fmt.Errorf("sequence file: layer %d page %d is marked released where the layer needs it", l, i)
						return 0, err
					}
					s.pages = append(s.pages, nil)
					continue
				}
				if e := CheckType(t, headDim); e != nil {
					err = fmt.Errorf("sequence file: %w", e)
					return 0, err
				}
				if t.IsCodebook() && fileCB != tensor.CodebookVersion {
					err = fmt.Errorf("sequence file: its %s pages were written with codebook version %d; this kvserve reads version %d", t, fileCB, tensor.CodebookVersion)
					return 0, err
				}
				if si == 0 && isQuantized(t) && fileChan != c.cfg.KeyChannels {
					err = fmt.Errorf("sequence file: its %s K pages were written with key channels %s; this cache uses %s", t, fileChan, c.cfg.KeyChannels)
					return 0, err
				}
				if si == 1 && isQuantized(t) && fileVC != c.cfg.ValueChannels {
					err = fmt.Errorf("sequence file: its %s V pages were written with value channels %v; this cache uses %v", t, fileVC, c.cfg.ValueChannels)
					return 0, err
				}
				if size != c.cfg.PageBytes(t, si == 1) || rot > 1 {
					err = fmt.Errorf("sequence file: page of %d bytes does not match type %s", size, t)
					return 0, err
				}
				p := c.allocPage(t, rot == 1, si == 1)
				s.pages = append(s.pages, p)
				_, err = io.ReadFull(br, p.mem.b)
			}
			nil0 := 0
			for nil0 < len(s.pages) && s.pages[nil0] == nil {
				nil0++
			}
			if lo >= 0 && nil0 != lo && err == nil {
				err = fmt.Errorf("sequence file: layer %d: K and V pages released differently", l)
				return 0, err
			}
			lo = nil0
		}
		ls.n = n
		ls.lo = max(lo, 0)
	}
	var state []float32
	var ckpts []checkpoint
	statePos := 0
	if string(magic) == seqMagic {
		if sn := int(get()); err == nil && sn != c.stateN {
			err = fmt.Errorf("sequence file holds %d floats of recurrent state per sequence, this cache %d", sn, c.stateN)
			return 0, err
		}
		if c.stateN > 0 && err == nil {
			statePos = int(get())
			state = make([]float32, c.stateN)
			if err == nil {
				err = binary.Read(br, binary.LittleEndian, state)
			}
			if err == nil && statePos != n {
				err = fmt.Errorf("sequence file: recurrent state of %d tokens for %d positions", statePos, n)
				return 0, err
			}
			nc := int(get())
			if err == nil && nc > 64 {
				err = fmt.Errorf("sequence file: %d state checkpoints", nc)
				return 0, err
			}
			for i := 0; i < nc && err == nil; i++ {
				cp := checkpoint{pos: int(get()), layers: c.nRecurrent, data: make([]float32, c.stateN)}
				if err == nil {
					err = binary.Read(br, binary.LittleEndian, cp.data)
				}
				if err == nil && (cp.pos <= 0 || cp.pos > n) {
					err = fmt.Errorf("sequence file: state checkpoint at %d of %d positions", cp.pos, n)
					return 0, err
				}
				if len(ckpts) < c.cfg.Checkpoints {
					ckpts = append(ckpts, cp)
				}
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("sequence file truncated: %w", err)
		return 0, err
	}
	c.clearForRestore(seq)
	copy(c.seqs[seq], fresh)
	if state != nil {
		copy(c.states[seq].live, state)
		c.states[seq].pos = statePos
		c.states[seq].ckpts = ckpts
	}
	for l := range c.kshadow[seq] {
		c.kshadow[seq][l].page = -1
		c.vshadow[seq][l].page = -1
	}
	c.roles[seq] = make([]Role, n) // a restored sequence's tokens count as prompt
	return n, nil
}
