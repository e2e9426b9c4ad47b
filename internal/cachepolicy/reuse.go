package cachepolicy

import (
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Reusable returns how many of the first n cached positions of seq a new
// request whose prompt holds promptLen tokens may keep: all n, unless a
// page holding any of them (in any layer, K or V) is at a lower precision
// than the page rules give that page once the new prompt is in — the
// policy never steps a page back up, so reusing it would hold the new
// context at a precision the policy does not want (an old conversation's
// page 0, demoted by its length or age, reused by a new one that shares
// only the BOS token). Then the positions before that page are kept, and
// the prompt is evaluated again from it.
//
// Pages the budget demoted are reusable when no page rule asks for more
// (the budget demotes again what it must). The kept tokens are history: a
// reasoning rule that waits for the answer counts their reasoning as
// finished.
func (p *Policy) Reusable(c *kvcache.Cache, seq, n, promptLen int) int {
	if p == nil || n <= 0 {
		return n
	}
	rules := p.pageRules()
	if len(rules) == 0 {
		return n
	}
	cfg := c.Config()
	P := cfg.PageTokens
	sq := &Seq{SeqState: SeqState{Seq: seq, Active: true, Answer: true}, Len: max(promptLen, n), PageTokens: P}
	roles := c.Roles(seq)
	for i := 0; i*P < n; i++ {
		// Roles of the kept positions of the page, and the prompt's that
		// will fill it after them.
		var rs kvcache.RoleSet
		for _, r := range roles[min(i*P, len(roles)):min((i+1)*P, n, len(roles))] {
			rs |= 1 << r
		}
		if (i+1)*P > n {
			rs |= 1 << kvcache.RolePrompt
		}
		for l := 0; l < cfg.Layers; l++ {
			for _, v := range []bool{false, true} {
				ref := kvcache.PageRef{Seq: seq, Layer: l, V: v, Index: i}
				cur, _, ok := c.Page(ref)
				if !ok {
					continue // released (window layer): Cache.Reusable decides
				}
				// The stricter wins: the policy wants the lowest type any
				// rule asks for.
				pg := Page{PageRef: ref, Seq: sq, Type: cur, Roles: rs}
				var want tensor.Type
				asked := false
				for _, r := range rules {
					if t, ok := r.Target(&pg); ok {
						if !asked {
							want, asked = t, true
						} else {
							want = lower(want, t)
						}
					}
				}
				if asked && want.BitsPerValue() > cur.BitsPerValue() {
					return i * P
				}
			}
		}
	}
	return n
}
