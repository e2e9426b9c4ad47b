// Package kvcache owns kvserve's KV cache: typed, paged storage of every
// sequence's keys and values, the accounting of its bytes, and attention
// over it.
//
// Storage is split per sequence, per layer and per K/V into pages of
// PageTokens token positions. Each page has its own element type (any of
// ggml's cache types) and records whether its rows are Hadamard-rotated, so
// pages can be converted and freed one at a time while the rest of the
// cache keeps serving. Page memory is mapped directly from the OS (off the
// Go heap), so a freed page's bytes leave the process at once.
package kvcache

import (
	"fmt"
	"github.com/kvserve/kvserve/internal/attn"
	"sync"
	"sync/atomic"

	"github.com/kvserve/kvserve/internal/tensor"
)

// DefaultPageTokens is the number of token positions per page.
const DefaultPageTokens = 256

// Config describes a cache's shape and initial types.
type Config struct {
	Layers     int
	KVHeads    int
	HeadDimK   int
	HeadDimV   int
	Seqs       int // number of sequences (slots)
	Ctx        int // maximum tokens per sequence
	PageTokens int // 0: DefaultPageTokens
	Threads    int // callers of Attend pass worker ids below this

	// Per-layer types of newly written pages (len == Layers).
	TypeK, TypeV []tensor.Type
	// Rotate stores quantized pages Hadamard-rotated per head.
	Rotate bool
	// Attn is how each layer attends (len == Layers; nil: every layer
	// full causal attention).
	Attn []attn.Layer
	// KeepWindowPages keeps every page of sliding-window layers (they
	// still attend only their window): llama.cpp's --swa-full.
	KeepWindowPages bool
	// KeyChannels: quantized K pages keep per-channel statistics
	// (keychan.go).
	KeyChannels KeyChannels
	// ValueChannels: quantized V pages keep per-channel means (keychan.go).
	ValueChannels bool
	// KeyQuery: codebook K rows are written with indices refined against
	// the sequence's observed query second moment (keyquery.go).
	KeyQuery bool

	// Hybrid models (state.go): Recurrent[l] marks layers that hold no KV
	// rows but, per sequence, ConvState + SSMState f32 values of state;
	// Checkpoints copies of it are kept per sequence at page boundaries.
	Recurrent           []bool
	ConvState, SSMState int
	Checkpoints         int
}

// Page holds the K or V rows of PageTokens consecutive positions of one
// sequence in one layer. Its memory is head-major: the rows of head h are
// contiguous (head h of position t is at (h*PageTokens+t)*HeadBytes), so
// attention reads one head's keys or values as a single strided block and
// conversions work on whole heads.
type Page struct {
	Type    tensor.Type
	Rotated bool
	mem     *block
	meta    int   // offset of the channel statistics in mem (0: none; keychan.go)
	shared  int   // holders besides the first (share.go); the page is freed when the last lets go
	side    uint8 // 0: a K page, 1: a V page
}

// Bytes is the page's accounted size: rows × row size of its type.
func (p *Page) Bytes() int { return len(p.mem.b) }

type stream struct {
	pages []*Page
}

type layerSeq struct {
	k, v stream
	n    int // positions stored
	lo   int // pages before lo were released (sliding-window layers): nil
}

// streams returns the K and V streams, indexed by side (0: K, 1: V).
func (ls *layerSeq) streams() [2]*stream { return [2]*stream{&ls.k, &ls.v} }

// Cache is a paged KV cache for several sequences. Store and Attend may
// be called from the forward pass (Attend concurrently from workers);
// structural changes (Truncate, Clear, conversions) must not overlap a
// forward pass — the engine serialises them.
type Cache struct {
	cfg      Config
	rowK     int // elements per K row (KVHeads*HeadDimK)
	rowV     int
	seqs     [][]layerSeq // [seq][layer]
	scratch  []*attnScratch
	wtmp     []float32       // Store's rotation scratch (Store is single-threaded)
	cbuf     [][]float32     // conversion scratch per worker: one head of a page
	cchan    [][]float32     // conversion scratch per worker: μ and s of one head
	seqK     [][]tensor.Type // per-sequence write types overriding the layer's (nil: none)
	seqV     [][]tensor.Type
	roles    [][]Role       // per sequence: the role of each position held
	wrole    []Role         // per sequence: the role of the tokens stored next
	pageOver []pageOverride // per sequence: types of one page ahead of its allocation
	kshadow  [][]kshadow    // [seq][layer]: raw K rows of the page being written (KeyChannels)
	vshadow  [][]kshadow    // [seq][layer]: raw V rows of the page being written (ValueChannels)
	chanBuf  []float32      // Store's channel-statistics scratch (2 × the larger head dimension)
	qstats   [][]qstat      // [seq][layer]: query statistics (KeyQuery; nil until used)
	qtmp     []float32      // ObserveQuery's scratch (2 × the query heads per KV head × HeadDimK)
	qce      []float32      // refineKeyRow's scratch (4 × HeadDimK)
	qscr     []float32      // refineKeyRow's scratch: a statistic in another basis (HeadDimK²; KeyQuery)
	qcarry   []float32      // carried's scratch: a statistic in another basis (KVHeads × HeadDimK²)
	qbytes   atomic.Int64   // bytes of query statistics held

	// Recurrent state (state.go; nil for attention-only models).
	states     []stateSeq
	stateOff   []int // per layer: offset of its state in a sequence's block (−1: attention layer)
	stateN     int   // floats per sequence
	nRecurrent int
	firstKV    int // the first layer with KV rows (Len and roles follow it)
	firstRec   int // the first recurrent layer

	mu    sync.Mutex // guards the accounting counters below
	bytes map[tensor.Type]int64
	pages int64
}

// New creates an empty cache.
func New(cfg Config) (*Cache, error) {
	if cfg.PageTokens == 0 {
		cfg.PageTokens = DefaultPageTokens
	}
	if cfg.Layers <= 0 || cfg.KVHeads <= 0 || cfg.HeadDimK <= 0 || cfg.HeadDimV <= 0 || cfg.Seqs <= 0 || cfg.Ctx <= 0 || cfg.PageTokens <= 0 {
		return nil, fmt.Errorf("kvcache: invalid shape %+v", cfg)
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	if len(cfg.TypeK) != cfg.Layers || len(cfg.TypeV) != cfg.Layers {
		return nil, fmt.Errorf("kvcache: %d K and %d V layer types for %d layers", len(cfg.TypeK), len(cfg.TypeV), cfg.Layers)
	}
	for l := 0; l < cfg.Layers; l++ {
		if err := CheckType(cfg.TypeK[l], cfg.HeadDimK); err != nil {
			return nil, fmt.Errorf("layer %d K: %w", l, err)
		}
		if err := CheckType(cfg.TypeV[l], cfg.HeadDimV); err != nil {
			return nil, fmt.Errorf("layer %d V: %w", l, err)
		}
	}
	if err := checkAttn(&cfg); err != nil {
		return nil, err
	}
	cfg.TypeK = append([]tensor.Type(nil), cfg.TypeK...)
	cfg.TypeV = append([]tensor.Type(nil), cfg.TypeV...)
	cfg.Attn = append([]attn.Layer(nil), cfg.Attn...)
	if len(cfg.Attn) == 0 {
		cfg.Attn = nil
	}
	c := &Cache{
		cfg:   cfg,
		rowK:  cfg.KVHeads * cfg.HeadDimK,
		rowV:  cfg.KVHeads * cfg.HeadDimV,
		bytes: map[tensor.Type]int64{},
	}
	if cfg.KeyChannels > KeyChannelsScale {
		return nil, fmt.Errorf("kvcache: key channels %d invalid", cfg.KeyChannels)
	}
	c.wtmp = make([]float32, max(c.rowK, c.rowV))
	c.chanBuf = make([]float32, 2*max(cfg.HeadDimK, cfg.HeadDimV))
	c.qtmp = make([]float32, cfg.HeadDimK)
	c.qce = make([]float32, 4*cfg.HeadDimK)
	if cfg.KeyQuery {
		c.qscr = make([]float32, cfg.HeadDimK*cfg.HeadDimK)
	}
	c.kshadow = make([][]kshadow, cfg.Seqs)
	c.vshadow = make([][]kshadow, cfg.Seqs)
	for s := range c.kshadow {
		c.kshadow[s] = make([]kshadow, cfg.Layers)
		c.vshadow[s] = make([]kshadow, cfg.Layers)
	}
	c.cchan = make([][]float32, cfg.Threads)
	for i := range c.cchan {
		c.cchan[i] = make([]float32, 2*max(cfg.HeadDimK, cfg.HeadDimV))
	}
	c.cbuf = make([][]float32, cfg.Threads)
	for i := range c.cbuf {
		c.cbuf[i] = make([]float32, cfg.PageTokens*max(cfg.HeadDimK, cfg.HeadDimV))
	}
	c.seqK = make([][]tensor.Type, cfg.Seqs)
	c.seqV = make([][]tensor.Type, cfg.Seqs)
	c.seqs = make([][]layerSeq, cfg.Seqs)
	c.roles = make([][]Role, cfg.Seqs)
	c.wrole = make([]Role, cfg.Seqs)
	c.pageOver = make([]pageOverride, cfg.Seqs)
	for s := range c.pageOver {
		c.pageOver[s].index = -1
	}
	for s := range c.seqs {
		c.seqs[s] = make([]layerSeq, cfg.Layers)
	}
	c.scratch = make([]*attnScratch, cfg.Threads)
	for i := range c.scratch {
		c.scratch[i] = newAttnScratch(&cfg)
	}
	if err := c.initState(); err != nil {
		return nil, err
	}
	return c, nil
}

// Config returns the cache's configuration (types are the current write
// types); the slices are copies.
func (c *Cache) Config() Config {
	cfg := c.cfg
	cfg.TypeK = append([]tensor.Type(nil), cfg.TypeK...)
	cfg.TypeV = append([]tensor.Type(nil), cfg.TypeV...)
	return cfg
}

// Attn returns how layer l attends.
func (c *Cache) Attn(l int) attn.Layer { return *c.attn(l) }

// Len returns the number of positions stored for seq.
func (c *Cache) Len(seq int) int { return c.seqs[seq][c.firstKV].n }

// Store writes one token's K and V rows for layer l of seq at position pos,
// which must be at most the number of positions already stored (pos equal
// to it appends; smaller overwrites).
func (c *Cache) Store(l, seq, pos int, k, v []float32) {
	ls := &c.seqs[seq][l]
	if pos > ls.n || pos >= c.cfg.Ctx {
		panic(fmt.Sprintf("kvcache: store at position %d of sequence %d holding %d (ctx %d)", pos, seq, ls.n, c.cfg.Ctx))
	}
	pi, row := pos/c.cfg.PageTokens, pos%c.cfg.PageTokens
	tk, tv := c.pageTypes(seq, l, pi)
	if p := c.write(&ls.k, pi, row, tk, false, k, c.keyStat(seq, l)); p != nil {
		c.writeChan(p, seq, l, pi, row, k)
	}
	if p := c.write(&ls.v, pi, row, tv, true, v, nil); p != nil {
		c.writeChan(p, seq, l, pi, row, v)
	}
	if l == c.firstKV {
		c.setRole(seq, pos)
	}
	if pos == ls.n {
		ls.n++
	}
}

// write stores row x at row of page pi of stream s (a V stream when v),
// allocating the page in type t if needed. A page with channel
// statistics is returned unwritten, for writeChan.
func (c *Cache) write(s *stream, pi, row int, t tensor.Type, v bool, x []float32, st *qstat) *Page {
	if pi == len(s.pages) {
		s.pages = append(s.pages, c.newPage(t, v))
	}
	p := s.pages[pi]
	if p == nil { // released (window layer), written again after a rollback
		p = c.newPage(t, v)
		s.pages[pi] = p
	}
	if p.shared > 0 { // copy on write
		c.unshare(s, pi)
		p = s.pages[pi]
	}
	if p.meta != 0 {
		return p
	}
	headDim := c.cfg.HeadDimK
	if v {
		headDim = c.cfg.HeadDimV
	}
	hb := p.Type.RowSize(headDim)
	P := c.cfg.PageTokens
	if p.Rotated {
		tmp := c.wtmp[:len(x)]
		copy(tmp, x)
		p.rotate(tmp, headDim)
		x = tmp
	}
	for h := 0; h*headDim < len(x); h++ {
		seg := x[h*headDim : (h+1)*headDim]
		off := (h*P + row) * hb
		encode(p.Type, seg, p.mem.b[off:off+hb])
		c.refineKeyRow(p, st, h, seg, p.mem.b[off:off+hb])
	}
	return nil
}

// newPage allocates a page of type t (a V page when v), with channel
// statistics set to the identity when it has them.
func (c *Cache) newPage(t tensor.Type, v bool) *Page {
	p := c.allocPage(t, pageRotated(c.cfg.Rotate, t, c.headDim(v)), v)
	c.initChan(p)
	return p
}

// allocPage allocates and accounts a page of type t and rotation rot (a V
// page when v); its statistics, if any, are not set.
func (c *Cache) allocPage(t tensor.Type, rot, v bool) *Page {
	p := c.uncountedPage(t, rot, v)
	c.account(t, int64(len(p.mem.b)), 1)
	return p
}

// uncountedPage allocates a page that the cache's accounting does not
// count (allocPage counts it; WriteSeqAs uses uncounted scratch pages).
func (c *Cache) uncountedPage(t tensor.Type, rot, v bool) *Page {
	size := c.cfg.PageBytes(t, v)
	p := &Page{Type: t, Rotated: rot, mem: allocBlock(size)}
	if v {
		p.side = 1
	}
	if c.cfg.metaBytes(t, v) > 0 {
		p.meta = size - c.cfg.metaBytes(t, v)
	}
	return p
}

func (c *Cache) headDim(v bool) int {
	if v {
		return c.cfg.HeadDimV
	}
	return c.cfg.HeadDimK
}

func (c *Cache) freePage(p *Page) {
	if p.shared > 0 { // another sequence still holds it
		p.shared--
		return
	}
	c.account(p.Type, -int64(len(p.mem.b)), -1)
	p.mem.free()
	p.mem = nil
}

func (c *Cache) account(t tensor.Type, bytes, pages int64) {
	c.mu.Lock()
	c.bytes[t] += bytes
	c.pages += pages
	c.mu.Unlock()
}

// Truncate drops positions n and later of seq, freeing pages that no
// longer hold any position.
func (c *Cache) Truncate(seq, n int) {
	if n < 0 {
		n = 0
	}
	keep := (n + c.cfg.PageTokens - 1) / c.cfg.PageTokens
	for l := range c.seqs[seq] {
		ls := &c.seqs[seq][l]
		if n >= ls.n {
			continue
		}
		for _, s := range ls.streams() {
			for _, p := range s.pages[min(keep, len(s.pages)):] {
				if p != nil {
					c.freePage(p)
				}
			}
			s.pages = s.pages[:min(keep, len(s.pages))]
		}
		ls.n = n
		ls.lo = min(ls.lo, keep)
		for _, sh := range []*kshadow{&c.kshadow[seq][l], &c.vshadow[seq][l]} {
			if sh.page >= 0 {
				sh.rows = min(sh.rows, max(0, n-sh.page*c.cfg.PageTokens))
			}
		}
	}
	if n < len(c.roles[seq]) {
		c.roles[seq] = c.roles[seq][:n]
	}
	if c.states != nil {
		c.truncateState(seq, n)
	}
	if n == 0 {
		c.resetKeyStats(seq)
		c.wrole[seq] = RolePrompt
		c.pageOver[seq] = pageOverride{index: -1}
	}
}

// Clear empties seq.
func (c *Cache) Clear(seq int) { c.Truncate(seq, 0) }

// clearForRestore empties seq for a restore, keeping its query statistic
// (KeyQuery): it sums the slot's past queries, not any token's rows, and
// the restored keys were encoded with it.
func (c *Cache) clearForRestore(seq int) {
	var st []qstat
	if c.qstats != nil {
		st, c.qstats[seq] = c.qstats[seq], nil
	}
	c.Clear(seq)
	if c.qstats != nil {
		c.qstats[seq] = st
	}
}

// Bytes returns the bytes held by all pages.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s int64
	for _, b := range c.bytes {
		s += b
	}
	return s
}

// BytesByType returns the bytes held per page type.
func (c *Cache) BytesByType() map[tensor.Type]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[tensor.Type]int64, len(c.bytes))
	for t, b := range c.bytes {
		if b != 0 {
			m[t] = b
		}
	}
	return m
}

// SeqBytesByType returns the bytes seq's pages hold per page type, for
// K and V apart: what the sequence holds, whatever it writes next.
func (c *Cache) SeqBytesByType(seq int) (k, v map[tensor.Type]int64) {
	k, v = map[tensor.Type]int64{}, map[tensor.Type]int64{}
	for l := range c.seqs[seq] {
		ls := &c.seqs[seq][l]
		for side, s := range ls.streams() {
			m := k
			if side == 1 {
				m = v
			}
			for _, p := range s.pages {
				if p != nil {
					m[p.Type] += int64(p.Bytes())
				}
			}
		}
	}
	return k, v
}

// Close frees every page.
func (c *Cache) Close() {
	for s := range c.seqs {
		c.Clear(s)
	}
}

// PageInfo describes one page for usage reports.
type PageInfo struct {
	Layer   int
	V       bool // a V page (else K)
	Index   int  // page number within the sequence (positions Index*PageTokens...)
	Type    tensor.Type
	Rotated bool
	Bytes   int
	// MetaBytes: the page's channel statistics (per-page key channel
	// means and spreads, or value means), counted in Bytes; 0 without.
	MetaBytes int
	Tokens    int     // positions it holds
	Roles     RoleSet // roles of the tokens it holds
	Holders   int     // sequences holding it (more than 1: a shared prefix page)
}

// Ref names the page within sequence seq.
func (p PageInfo) Ref(seq int) PageRef {
	return PageRef{Seq: seq, Layer: p.Layer, V: p.V, Index: p.Index}
}

// Pages lists seq's pages, layer by layer, K then V.
func (c *Cache) Pages(seq int) []PageInfo {
	var out []PageInfo
	for l := range c.seqs[seq] {
		ls := &c.seqs[seq][l]
		for vi, s := range ls.streams() {
			for i, p := range s.pages {
				if p == nil {
					continue
				}
				out = append(out, PageInfo{Layer: l, V: vi == 1, Index: i, Type: p.Type, Rotated: p.Rotated,
					Bytes: p.Bytes(), MetaBytes: c.cfg.metaBytes(p.Type, vi == 1), Tokens: min(c.cfg.PageTokens, ls.n-i*c.cfg.PageTokens), Roles: c.PageRoles(seq, i), Holders: p.shared + 1})
			}
		}
	}
	return out
}

// WriteTypes returns the types new pages of layer l of seq are written in.
func (c *Cache) WriteTypes(seq, l int) (k, v tensor.Type) {
	k, v = c.cfg.TypeK[l], c.cfg.TypeV[l]
	if o := c.seqK[seq]; o != nil {
		k = o[l]
	}
	if o := c.seqV[seq]; o != nil {
		v = o[l]
	}
	return k, v
}

// SetSeqWriteTypes overrides the types new pages of seq are written in
// (per layer; nil restores the layer defaults). Types are checked.
func (c *Cache) SetSeqWriteTypes(seq int, k, v []tensor.Type) error {
	for i, ts := range [][]tensor.Type{k, v} {
		if ts == nil {
			continue
		}
		dim := c.cfg.HeadDimK
		if i == 1 {
			dim = c.cfg.HeadDimV
		}
		if len(ts) != c.cfg.Layers {
			return fmt.Errorf("kvcache: %d layer types for %d layers", len(ts), c.cfg.Layers)
		}
		for _, t := range ts {
			if err := CheckType(t, dim); err != nil {
				return err
			}
		}
	}
	c.seqK[seq] = append([]tensor.Type(nil), k...)
	c.seqV[seq] = append([]tensor.Type(nil), v...)
	if k == nil {
		c.seqK[seq] = nil
	}
	if v == nil {
		c.seqV[seq] = nil
	}
	return nil
}

// NumPages returns the number of page slots of seq in layer l (K and V have
// the same number): pages 0..NumPages-1 cover the positions stored, though
// a sliding-window layer's oldest may have been released (Page reports
// them as absent).
func (c *Cache) NumPages(seq, l int) int { return len(c.seqs[seq][l].k.pages) }

// Page returns the type and rotation of a page.
func (c *Cache) Page(r PageRef) (t tensor.Type, rotated bool, ok bool) {
	if r.Seq < 0 || r.Seq >= c.cfg.Seqs || r.Layer < 0 || r.Layer >= c.cfg.Layers {
		return 0, false, false
	}
	ls := &c.seqs[r.Seq][r.Layer]
	s := &ls.k
	if r.V {
		s = &ls.v
	}
	if r.Index < 0 || r.Index >= len(s.pages) || s.pages[r.Index] == nil {
		return 0, false, false
	}
	p := s.pages[r.Index]
	return p.Type, p.Rotated, true
}

// PlanStep returns the step converting one page to type t (rotated per
// the cache's rotation setting when t is quantized), without converting;
// ok is false when the page is absent or t cannot hold its heads.
func (c *Cache) PlanStep(r PageRef, t tensor.Type) (Step, bool) {
	from, rot, ok := c.Page(r)
	if !ok {
		return Step{}, false
	}
	dim := c.headDim(r.V)
	if CheckType(t, dim) != nil {
		return Step{}, false
	}
	ls := &c.seqs[r.Seq][r.Layer]
	return Step{PageRef: r, From: from, To: t, FromRot: rot, ToRot: c.rotateFor(nil, t, dim),
		Tokens:      min(c.cfg.PageTokens, ls.n-r.Index*c.cfg.PageTokens),
		BytesBefore: c.cfg.PageBytes(from, r.V), BytesAfter: c.cfg.PageBytes(t, r.V)}, true
}

// Convert converts one page to type t (see PlanStep), returning the bytes
// it freed (negative when it grew) and whether it converted.
func (c *Cache) Convert(r PageRef, t tensor.Type) (int64, bool) {
	st, ok := c.PlanStep(r, t)
	if !ok {
		return 0, false
	}
	if !c.ConvertPage(st) {
		return 0, false
	}
	return int64(st.BytesBefore - st.BytesAfter), true
}
