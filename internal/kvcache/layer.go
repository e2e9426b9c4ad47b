package kvcache

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/attn"
)

func (c *Cache) attn(l int) *attn.Layer {
	if c.cfg.Attn == nil {
		return &fullAttn
	}
	return &c.cfg.Attn[l]
}

var fullAttn attn.Layer

func checkAttn(cfg *Config) error {
	if cfg.Attn == nil {
		return nil
	}
	if len(cfg.Attn) != cfg.Layers {
		return fmt.Errorf("kvcache: %d layer attention specs for %d layers", len(cfg.Attn), cfg.Layers)
	}
	for l, a := range cfg.Attn {
		if a.Window < 0 || a.Softcap < 0 {
			return fmt.Errorf("kvcache: layer %d: window %d / softcap %g invalid", l, a.Window, a.Softcap)
		}
		if a.Sinks != nil && (len(a.Sinks) == 0 || len(a.Sinks)%cfg.KVHeads != 0) {
			return fmt.Errorf("kvcache: layer %d: %d sink logits for %d KV heads", l, len(a.Sinks), cfg.KVHeads)
		}
	}
	return nil
}

// keepFrom returns how many leading pages of a window layer no later token
// can attend once n positions are stored: pages wholly before the window of
// the next token, less one page of slack so that a sequence rolled back by
// up to a page (prefix reuse after a re-tokenised turn, a rejected draft)
// still finds every page its next token attends.
func (c *Cache) keepFrom(a *attn.Layer, n int) int {
	if a.Window <= 0 {
		return 0
	}
	P := c.cfg.PageTokens
	return max(0, n-a.Window+1-P) / P
}

// Release frees the pages of seq's sliding-window layers that no later
// token can attend (pages wholly outside every remaining window, beyond
// one page of slack). The forward pass calls it after each batch: pages a
// batch's earlier tokens attend stay until the whole batch has run.
func (c *Cache) Release(seq int) {
	if c.cfg.KeepWindowPages {
		return
	}
	for l := range c.seqs[seq] {
		a := c.attn(l)
		if a.Window <= 0 {
			continue
		}
		ls := &c.seqs[seq][l]
		to := min(c.keepFrom(a, ls.n), len(ls.k.pages))
		for ; ls.lo < to; ls.lo++ {
			for _, s := range ls.streams() {
				if p := s.pages[ls.lo]; p != nil {
					c.freePage(p)
					s.pages[ls.lo] = nil
				}
			}
		}
	}
}

// Reusable returns how many of seq's first n positions a new request can
// keep: n when every sliding-window layer still holds the pages the token
// at position n attends, else 0 (those pages were released, and the
// positions before them must be evaluated again to rebuild them). With
// recurrent layers, n is cut back further to the longest prefix the state
// can resume (the live state or a checkpoint, state.go).
func (c *Cache) Reusable(seq, n int) int {
	P := c.cfg.PageTokens
	if c.states != nil {
		n = c.resumable(seq, n)
	}
	for l := range c.seqs[seq] {
		a := c.attn(l)
		if ls := &c.seqs[seq][l]; ls.lo > 0 && ls.lo*P > a.WindowStart(n) {
			return 0
		}
	}
	return n
}

// maxPages is the most pages a sequence of ctx positions holds in layer
// l at rest: every page for full attention, the window's pages plus the
// slack page for a sliding-window layer.
func (c *Cache) maxPages(l, ctx int) int {
	if c.cfg.Recurrent != nil && c.cfg.Recurrent[l] {
		return 0 // a recurrent layer holds state, no pages
	}
	P := c.cfg.PageTokens
	full := (ctx + P - 1) / P
	a := c.attn(l)
	if a.Window <= 0 || c.cfg.KeepWindowPages {
		return full
	}
	return min(full, (a.Window-1+P-1)/P+2)
}
