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
//	magic "KVSSEQ01", layers, kv heads, head dim K, head dim V, page tokens,
//	tokens (uint32 each); then per layer, K then V: page count, and per page
//	type, rotated flag, byte length, bytes.
//
// Integrity (checksums) and the token list are the caller's business.
const seqMagic = "KVSSEQ01"

// WriteSeq writes seq's pages to w.
func (c *Cache) WriteSeq(seq int, w io.Writer) error {
	bw := bufio.NewWriter(w)
	put := func(v uint32) { binary.Write(bw, binary.LittleEndian, v) }
	bw.WriteString(seqMagic)
	for _, v := range []int{c.cfg.Layers, c.cfg.KVHeads, c.cfg.HeadDimK, c.cfg.HeadDimV, c.cfg.PageTokens, c.Len(seq)} {
		put(uint32(v))
	}
	for l := range c.seqs[seq] {
		ls := &c.seqs[seq][l]
		for _, s := range []*stream{&ls.k, &ls.v} {
			put(uint32(len(s.pages)))
			for _, p := range s.pages {
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
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != seqMagic {
		return 0, errors.New("not a kvserve sequence file")
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
				for _, s := range []*stream{&fresh[l].k, &fresh[l].v} {
					for _, p := range s.pages {
						c.freePage(p)
					}
				}
			}
		}
	}()
	for l := range fresh {
		ls := &fresh[l]
		for si, s := range []*stream{&ls.k, &ls.v} {
			rowElems, headDim := c.rowK, c.cfg.HeadDimK
			if si == 1 {
				rowElems, headDim = c.rowV, c.cfg.HeadDimV
			}
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
				if e := CheckType(t, headDim); e != nil {
					err = fmt.Errorf("sequence file: %w", e)
					return 0, err
				}
				if size != t.RowSize(rowElems)*c.cfg.PageTokens || rot > 1 {
					err = fmt.Errorf("sequence file: page of %d bytes does not match type %s", size, t)
					return 0, err
				}
				p := &Page{Type: t, Rotated: rot == 1, mem: allocBlock(size)}
				c.account(t, int64(size), 1)
				s.pages = append(s.pages, p)
				_, err = io.ReadFull(br, p.mem.b)
			}
		}
		ls.n = n
	}
	if err != nil {
		err = fmt.Errorf("sequence file truncated: %w", err)
		return 0, err
	}
	c.Clear(seq)
	copy(c.seqs[seq], fresh)
	return n, nil
}
