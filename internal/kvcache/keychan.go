package kvcache

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Key channels: keys have channels whose values share a large offset over
// many tokens (and channels of very different spreads); a quantizer fitted
// per token spends its levels on them. With KeyChannels on, every
// quantized K page keeps, per head and channel, the mean μ of its tokens'
// keys (and, in scale mode, a spread s), and stores each key as
// k' = (k − μ)/s, rotated and quantized as usual. Scores need no decoded
// copy: q·k = q·μ + (q⊙s)·k', so a page is scored with the queries scaled
// by its s (rotated for a rotated page) and each score gets the page's
// q·μ added. Values are per token as before.
//
// The statistics live in the page, after its rows: binary16 μ for every
// head (KVHeads × HeadDimK), then, in scale mode, binary16 s likewise. They
// are counted in the page's bytes (Config.PageBytes).
//
// Writing token by token, a page's statistics are refitted from the raw
// rows written so far when it holds 1, 2, 4, ... and PageTokens rows, and
// its rows are then encoded again (each row is so encoded at most
// log2(PageTokens)+1 times; the raw rows of the page being written are kept
// in a write buffer of PageTokens × KVHeads × HeadDimK floats per sequence
// and layer). A page converted from another type is fitted from all its
// rows at once. So a key's stored bits depend on the later keys of its page
// (not on how a prompt was split into batches, except through which rows a
// batch's earlier tokens see fitted): unlike the other settings, results
// are not bit-identical across batchings of a prompt.

// KeyChannels selects the per-channel key transform.
type KeyChannels uint8

const (
	// KeyChannelsOff: keys quantized per token only.
	KeyChannelsOff KeyChannels = iota
	// KeyChannelsCentre: per-page per-channel mean removed.
	KeyChannelsCentre
	// KeyChannelsScale: mean removed and each channel divided by its
	// spread.
	KeyChannelsScale
)

func (k KeyChannels) String() string {
	switch k {
	case KeyChannelsOff:
		return "off"
	case KeyChannelsCentre:
		return "centre"
	case KeyChannelsScale:
		return "scale"
	}
	return fmt.Sprintf("KeyChannels(%d)", int(k))
}

// ParseKeyChannels parses "off", "centre" (or "center") or "scale".
func ParseKeyChannels(s string) (KeyChannels, error) {
	switch strings.ToLower(s) {
	case "", "off":
		return KeyChannelsOff, nil
	case "centre", "center", "on":
		return KeyChannelsCentre, nil
	case "scale":
		return KeyChannelsScale, nil
	}
	return 0, fmt.Errorf("key channels must be off, centre or scale, not %q", s)
}

// chanFields is the number of binary16 fields per head and channel.
func (k KeyChannels) fields() int {
	switch k {
	case KeyChannelsCentre:
		return 1
	case KeyChannelsScale:
		return 2
	}
	return 0
}

// chanMode is the channel statistics of pages of type t on one side:
// KeyChannels for quantized K pages, centre for quantized V pages when
// ValueChannels is on, else off.
func (cfg *Config) chanMode(t tensor.Type, v bool) KeyChannels {
	switch {
	case !isQuantized(t):
		return KeyChannelsOff
	case v && cfg.ValueChannels:
		return KeyChannelsCentre
	case v:
		return KeyChannelsOff
	}
	return cfg.KeyChannels
}

// metaBytes is the size of a page's channel statistics (0 for pages
// without them).
func (cfg *Config) metaBytes(t tensor.Type, v bool) int {
	D := cfg.HeadDimK
	if v {
		D = cfg.HeadDimV
	}
	return cfg.chanMode(t, v).fields() * cfg.KVHeads * D * 2
}

// pageChan is p's statistics' head dimension and mode.
func (c *Cache) pageChan(p *Page) (int, KeyChannels) {
	return c.headDim(p.side == 1), c.cfg.chanMode(p.Type, p.side == 1)
}

// PageBytes is the size of one page of type t (a V page when v): its rows
// and, for a K page with channel statistics, those.
func (cfg Config) PageBytes(t tensor.Type, v bool) int {
	P := cfg.PageTokens
	if P == 0 {
		P = DefaultPageTokens
	}
	rowElems := cfg.KVHeads * cfg.HeadDimK
	if v {
		rowElems = cfg.KVHeads * cfg.HeadDimV
	}
	return t.RowSize(rowElems)*P + cfg.metaBytes(t, v)
}

// chanStats returns head h's μ and s of page p (decoded into mu and sc,
// HeadDimK each; s is all ones in centre mode), false when p has none.
func (c *Cache) chanStats(p *Page, h int, mu, sc []float32) bool {
	if p.meta == 0 {
		return false
	}
	D, mode := c.pageChan(p)
	readStats(p.mem.b[p.meta:], mode, c.cfg.KVHeads, h, D, mu, sc)
	return true
}

// readStats decodes head h's μ and s (all ones unless mode is scale) from
// meta, the channel statistics of a page of kvHeads heads of D channels
// written in mode (not off).
func readStats(meta []byte, mode KeyChannels, kvHeads, h, D int, mu, sc []float32) {
	b := meta[2*h*D:]
	for i := range mu[:D] {
		mu[i] = tensor.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	if mode == KeyChannelsScale {
		b = meta[2*(kvHeads+h)*D:]
		for i := range sc[:D] {
			sc[i] = tensor.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	} else {
		for i := range sc[:D] {
			sc[i] = 1
		}
	}
}

// initChan sets a new K page's statistics to the identity (μ 0, s 1).
func (c *Cache) initChan(p *Page) {
	if p.meta == 0 {
		return
	}
	clear(p.mem.b[p.meta:])
	if D, mode := c.pageChan(p); mode == KeyChannelsScale {
		one := tensor.F32ToF16(1)
		for i := 0; i < c.cfg.KVHeads*D; i++ {
			binary.LittleEndian.PutUint16(p.mem.b[p.meta+2*(c.cfg.KVHeads*D+i):], one)
		}
	}
}

// fitChan sets head h's statistics of p from n raw rows of that head
// (x[r*stride:][:D] for r < n), rounded to binary16 as stored.
func (c *Cache) fitChan(p *Page, h int, x []float32, n, stride int) {
	D, mode := c.pageChan(p)
	mu := make([]float64, D)
	for r := 0; r < n; r++ {
		for i, v := range x[r*stride : r*stride+D] {
			mu[i] += float64(v)
		}
	}
	b := p.mem.b[p.meta+2*h*D:]
	for i := range mu {
		mu[i] /= float64(n)
		binary.LittleEndian.PutUint16(b[2*i:], tensor.F32ToF16(float32(mu[i])))
	}
	if mode != KeyChannelsScale {
		return
	}
	sc := make([]float64, D)
	if n >= 8 {
		var tot float64
		for r := 0; r < n; r++ {
			for i, v := range x[r*stride : r*stride+D] {
				d := float64(v) - mu[i]
				sc[i] += d * d
			}
		}
		for i := range sc {
			tot += sc[i]
		}
		for i := range sc {
			if tot > 0 {
				sc[i] = math.Sqrt(sc[i] / tot * float64(D))
			}
			sc[i] = min(max(sc[i], 1.0/16), 16)
		}
	} else {
		for i := range sc {
			sc[i] = 1
		}
	}
	b = p.mem.b[p.meta+2*(c.cfg.KVHeads+h)*D:]
	for i := range sc {
		binary.LittleEndian.PutUint16(b[2*i:], tensor.F32ToF16(float32(sc[i])))
	}
}

// toChan replaces n rows of D raw values (x[r*stride:][:D]) by
// (x − μ)/s with head h's statistics of p; fromChan undoes it.
func (c *Cache) toChan(p *Page, h int, x []float32, n, stride int, mu, sc []float32) {
	c.chanStats(p, h, mu, sc)
	for r := 0; r < n; r++ {
		row := x[r*stride : r*stride+len(mu)]
		for i := range row {
			row[i] = (row[i] - mu[i]) / sc[i]
		}
	}
}

func (c *Cache) fromChan(p *Page, h int, x []float32, n, stride int, mu, sc []float32) {
	c.chanStats(p, h, mu, sc)
	unchan(x, n, stride, mu, sc)
}

// unchan replaces n rows of D values (x[r*stride:][:D], D = len(mu)) by
// x·s + μ: the raw rows of channel-transformed ones.
func unchan(x []float32, n, stride int, mu, sc []float32) {
	for r := 0; r < n; r++ {
		row := x[r*stride : r*stride+len(mu)]
		for i := range row {
			row[i] = row[i]*sc[i] + mu[i]
		}
	}
}

// kshadow is the write buffer of one sequence's layer: the raw K rows of
// the page being written (page index, rows held from row 0).
type kshadow struct {
	page, rows int
	x          []float32
}

// writeChan stores raw K row x at row of page pi (page p, with channel
// statistics) of layer l of seq: into the write buffer, then either
// refitting the page's statistics and encoding every row held again (at
// 1, 2, 4, ... and PageTokens rows) or encoding the row with the current
// ones.
func (c *Cache) writeChan(p *Page, seq, l, pi, row int, x []float32) {
	P, D := c.cfg.PageTokens, c.headDim(p.side == 1)
	rowK := c.cfg.KVHeads * D
	sh := &c.kshadow[seq][l]
	if p.side == 1 {
		sh = &c.vshadow[seq][l]
	}
	if sh.x == nil {
		sh.x = make([]float32, P*rowK)
		sh.page = -1
	}
	if row == 0 {
		sh.page, sh.rows = pi, 0
	}
	valid := sh.page == pi && row <= sh.rows
	if valid {
		copy(sh.x[row*rowK:(row+1)*rowK], x)
		sh.rows = row + 1
	} else {
		sh.page = -1
	}
	n := row + 1
	if valid && (n&(n-1) == 0 || n == P) {
		for h := 0; h < c.cfg.KVHeads; h++ {
			c.fitChan(p, h, sh.x[h*D:], n, rowK)
		}
		c.encodeRawRows(p, sh.x[:n*rowK], 0, n, c.keyStat(seq, l))
		return
	}
	c.encodeRawRows(p, x, row, 1, c.keyStat(seq, l))
}

// encodeRawRows encodes n raw K rows (rowK each, x[r*rowK:]) into rows
// r0.. of p: channel transform, rotation, quantization. x is not changed.
func (c *Cache) encodeRawRows(p *Page, x []float32, r0, n int, st *qstat) {
	P, D := c.cfg.PageTokens, c.headDim(p.side == 1)
	rowE := c.cfg.KVHeads * D
	hb := p.Type.RowSize(D)
	tmp := c.wtmp[:rowE]
	mu, sc := c.chanBuf[:D], c.chanBuf[D:2*D]
	for r := 0; r < n; r++ {
		copy(tmp, x[r*rowE:(r+1)*rowE])
		for h := 0; h < c.cfg.KVHeads; h++ {
			c.toChan(p, h, tmp[h*D:], 1, D, mu, sc)
		}
		p.rotate(tmp, D)
		for h := 0; h < c.cfg.KVHeads; h++ {
			off := (h*P + r0 + r) * hb
			encode(p.Type, tmp[h*D:(h+1)*D], p.mem.b[off:off+hb])
			c.refineKeyRow(p, st, h, tmp[h*D:(h+1)*D], p.mem.b[off:off+hb])
		}
	}
}

// chanQueries prepares the queries for scoring K page kp's head h (kp
// has channel statistics): qs[r] = rotate(q[r] ⊙ s) and bias[r] = q[r]·μ
// for the R rows of q (unrotated).
func (s *attnScratch) chanQueries(c *Cache, kp *Page, h, D, R int, q []float32) {
	mu, sc := s.mu[:D], s.sc[:D]
	c.chanStats(kp, h, mu, sc)
	qs := s.qchan[:R*D]
	for r := 0; r < R; r++ {
		qr := q[r*D : (r+1)*D]
		kernels.Mul(qs[r*D:(r+1)*D], qr, sc)
		s.bias[r] = kernels.DotF32(qr, mu)
	}
	kp.rotate(qs, D)
}

func addScalar(x []float32, b float32) {
	for i := range x {
		x[i] += b
	}
}

// chanScratch is worker's μ/s scratch for conversions.
func (c *Cache) chanScratch(worker int) []float32 { return c.cchan[worker%len(c.cchan)] }
