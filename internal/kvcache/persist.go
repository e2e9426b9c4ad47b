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
//	magic "KVSSEQ04", codebook version (tensor.CodebookVersion), key
//	channels mode (Config.KeyChannels), layers, kv heads, head dim K, head
//	dim V, page tokens, tokens (uint32 each); then per layer, K then V:
//	page count, and per page type, rotated flag, byte length, bytes (a K
//	page's channel statistics included). A page a sliding-window layer
//	released is written as type 0xFFFFFFFF with no bytes. Version 02 files
//	(without the two version fields: no codebook types, key channels off)
//	and 01 files (which predate window layers) are read too. A file whose
//	codebook pages were written with other codebook levels, or whose K
//	pages were written with another key channels mode, is refused.
//
// Integrity (checksums) and the token list are the caller's business.
const (
	seqMagic   = "KVSSEQ04"
	seqMagicV2 = "KVSSEQ02"
	seqMagicV1 = "KVSSEQ01"
	released   = 0xFFFFFFFF
)

// WriteSeq writes seq's pages to w.
func (c *Cache) WriteSeq(seq int, w io.Writer) error {
	bw := bufio.NewWriter(w)
	put := func(v uint32) { binary.Write(bw, binary.LittleEndian, v) }
	bw.WriteString(seqMagic)
	for _, v := range []int{tensor.CodebookVersion, int(c.cfg.KeyChannels), c.cfg.Layers, c.cfg.KVHeads, c.cfg.HeadDimK, c.cfg.HeadDimV, c.cfg.PageTokens, c.Len(seq)} {
		put(uint32(v))
	}
	for l := range c.seqs[seq] {
		ls := &c.seqs[seq][l]
		for _, s := range ls.streams() {
			put(uint32(len(s.pages)))
			for _, p := range s.pages {
				if p == nil {
					put(released)
					put(0)
					put(0)
					continue
				}
				put(uint32(p.Type))
				rot := uint32(0)
				if p.Rotated {
					rot = 1
				}
				put(rot)
				put(uint32(len(p.mem.b)))
				bw.Write(p.mem.b)
			}
		}
	}
	return bw.Flush()
}

// ReadSeq replaces seq's contents with pages written by WriteSeq and
// returns the number of positions restored. The whole file is read and
// checked before seq changes: on any error seq keeps what it held.
func (c *Cache) ReadSeq(seq int, r io.Reader) (n int, err error) {
	br := bufio.NewReader(r)
	get := func() uint32 {
		var v uint32
		if err == nil {
			err = binary.Read(br, binary.LittleEndian, &v)
		}
		return v
	}
	magic := make([]byte, len(seqMagic))
	if _, err := io.ReadFull(br, magic); err != nil || (string(magic) != seqMagic && string(magic) != seqMagicV2 && string(magic) != seqMagicV1) {
		return 0, errors.New("not a kvserve sequence file")
	}
	fileCB, fileChan := uint32(0), KeyChannelsOff
	if string(magic) == seqMagic {
		fileCB, fileChan = get(), KeyChannels(get())
	}
	shape := []int{c.cfg.Layers, c.cfg.KVHeads, c.cfg.HeadDimK, c.cfg.HeadDimV, c.cfg.PageTokens}
	for i, want := range shape {
		if got := int(get()); err == nil && got != want {
			return 0, fmt.Errorf("sequence file was saved from a different cache shape (field %d: %d, this cache %d)", i, got, want)
		}
	}
	n = int(get())
	if err != nil {
		return 0, fmt.Errorf("sequence file truncated: %w", err)
	}
	if n > c.cfg.Ctx {
		return 0, fmt.Errorf("sequence file holds %d positions, more than the context of %d", n, c.cfg.Ctx)
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
		for si, s := range ls.streams() {
			headDim := c.headDim(si == 1)
			if cnt := int(get()); err == nil && cnt != nPages {
				err = fmt.Errorf("sequence file: layer %d has %d pages for %d positions", l, cnt, n)
				return 0, err
			}
			for i := 0; i < nPages && err == nil; i++ {
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
	if err != nil {
		err = fmt.Errorf("sequence file truncated: %w", err)
		return 0, err
	}
	c.Clear(seq)
	copy(c.seqs[seq], fresh)
	for l := range c.kshadow[seq] {
		c.kshadow[seq][l].page = -1
	}
	c.roles[seq] = make([]Role, n) // a restored sequence's tokens count as prompt
	return n, nil
}
