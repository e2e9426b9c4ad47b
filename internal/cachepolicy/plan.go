package cachepolicy

import (
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// SeqState is what the caller (the scheduler, or the perplexity harness)
// tells a plan about one sequence.
type SeqState struct {
	Seq int
	// Active: a request runs in the sequence. The page rules apply to
	// active sequences only, and only they get write types.
	Active bool
	// Adding is the tokens the next step stores (the budget makes room
	// for the pages they need).
	Adding int
	// Next is the roles of the tokens the next step stores (0: prompt).
	Next kvcache.RoleSet
	// MixedRoles, when not 0, says that page MixedPage will hold tokens of
	// these roles (the page where the prompt ends and generation begins):
	// if it is not allocated yet, it is written at their highest
	// precision.
	MixedPage  int
	MixedRoles kvcache.RoleSet
	// Answer: the model has closed its reasoning and writes its answer
	// (reasoning rules "after": "answer" apply).
	Answer bool
}

// Input is what a plan is made for.
type Input struct {
	Seqs []SeqState
	// Order lists sequences least recently used first: the order in which
	// the budget demotes.
	Order []int
}

// SeqWrite is the types new pages of a sequence are written in: per
// layer, and for one page ahead of its allocation (Page -1: none).
type SeqWrite struct {
	Seq          int
	K, V         []tensor.Type
	Page         int
	PageK, PageV []tensor.Type
}

// Plan is what a policy wants done before a step: page conversions (each
// page at most once, named by the rule that decided it) and write types.
// Nothing is converted until the plan is carried out.
type Plan struct {
	Steps  []kvcache.Step
	Writes []SeqWrite
	// Need is the bytes the next step's new pages take at the planned
	// write types; BytesAfter the cache's bytes once the steps are done.
	Need       int64
	BytesAfter int64
}

// Plan makes the policy's plan for the cache as it is now: the page rules
// for every active sequence (the stricter wins), then room under the
// budget for the next step's new pages, simulating the bytes the
// demotions free so that it plans exactly enough. It converts nothing.
// The error wraps ErrBudget when even every page at the bottom of its
// ladder cannot make room; the plan then demotes all it can.
func (p *Policy) Plan(c *kvcache.Cache, in Input) (*Plan, error) {
	pl := &Plan{}
	sm := newSim(c, pl)
	if p == nil || !p.Enabled() {
		pl.BytesAfter = sm.bytes
		return pl, nil
	}
	cfg := sm.cfg
	rules := p.pageRules()
	for _, ss := range in.Seqs {
		if !ss.Active {
			continue
		}
		sq := &Seq{SeqState: ss, Len: c.Len(ss.Seq), PageTokens: cfg.PageTokens}
		next := ss.Next
		if next == 0 {
			next = 1 << kvcache.RolePrompt
		}
		w := SeqWrite{Seq: ss.Seq, K: p.writes(cfg, rules, sq, false, next), V: p.writes(cfg, rules, sq, true, next), Page: -1}
		np := c.NumPages(ss.Seq, 0)
		if ss.MixedRoles != 0 && ss.MixedPage >= np {
			w.Page = ss.MixedPage
			w.PageK = p.writes(cfg, rules, sq, false, ss.MixedRoles)
			w.PageV = p.writes(cfg, rules, sq, true, ss.MixedRoles)
		}
		pl.Writes = append(pl.Writes, w)
		if ss.Adding > 0 {
			end := (sq.Len + ss.Adding + cfg.PageTokens - 1) / cfg.PageTokens
			for i := np; i < end; i++ {
				k, v := w.K, w.V
				if i == w.Page {
					k, v = w.PageK, w.PageV
				}
				pl.Need += pageBytes(cfg, k, v)
			}
		}
		if len(rules) == 0 {
			continue
		}
		for l := 0; l < cfg.Layers; l++ {
			for i := 0; i < c.NumPages(ss.Seq, l); i++ {
				roles := c.PageRoles(ss.Seq, i)
				// A page still being filled counts the roles it will
				// hold: the higher precision holds until it is full.
				if (i+1)*cfg.PageTokens > sq.Len {
					roles |= next
				}
				if ss.MixedRoles != 0 && i == ss.MixedPage {
					roles |= ss.MixedRoles
				}
				for _, side := range []bool{false, true} {
					ref := kvcache.PageRef{Seq: ss.Seq, Layer: l, V: side, Index: i}
					cur, ok := sm.typ(ref)
					if !ok {
						continue
					}
					pg := Page{PageRef: ref, Seq: sq, Type: cur, Roles: roles}
					target, reason := cur, ""
					for _, r := range rules {
						if t, ok := r.Target(&pg); ok && t.BitsPerValue() < target.BitsPerValue() {
							target, reason = t, r.Name()
						}
					}
					if reason != "" {
						sm.set(ref, target, reason)
					}
				}
			}
		}
	}
	var err error
	for _, r := range p.roomRules() {
		if err = r.Room(sm, &in); err != nil {
			break
		}
	}
	pl.BytesAfter = sm.bytes
	return pl, err
}

// writes returns the per-layer types a new page of sq holding the given
// roles is written in: the ladder's tier 0 (else the layer's type),
// lowered by every page rule that asks for less.
func (p *Policy) writes(cfg kvcache.Config, rules []PageRule, sq *Seq, v bool, roles kvcache.RoleSet) []tensor.Type {
	w := make([]tensor.Type, cfg.Layers)
	for l := range w {
		ladder := p.Ladder(l, v)
		w[l] = cfg.TypeK[l]
		if v {
			w[l] = cfg.TypeV[l]
		}
		if len(ladder) > 0 {
			w[l] = ladder[0]
		}
		for _, r := range rules {
			if t, ok := r.Write(sq, l, v, roles); ok {
				w[l] = lower(w[l], t)
			}
		}
	}
	return w
}

// pageBytes is what one page of every layer, K and V, costs at the given
// per-layer types.
func pageBytes(cfg kvcache.Config, k, v []tensor.Type) int64 {
	var b int64
	for l := 0; l < cfg.Layers; l++ {
		b += int64(cfg.PageBytes(k[l], false) + cfg.PageBytes(v[l], true))
	}
	return b
}

// sim is the cache as a plan's steps would leave it: page types and
// bytes.
type sim struct {
	c     *kvcache.Cache
	cfg   kvcache.Config
	plan  *Plan
	at    map[kvcache.PageRef]int // page → its step in plan.Steps
	bytes int64
}

func newSim(c *kvcache.Cache, pl *Plan) *sim {
	return &sim{c: c, cfg: c.Config(), plan: pl, at: map[kvcache.PageRef]int{}, bytes: c.Bytes() + c.StateBytes() + c.QueryStatBytes()}
}

// typ returns a page's planned type. A page shared by several sequences
// is one page to the plan (named through its first holder): it converts
// once, and its bytes count once.
func (s *sim) typ(ref kvcache.PageRef) (tensor.Type, bool) {
	ref = s.c.Canonical(ref)
	if i, ok := s.at[ref]; ok {
		return s.plan.Steps[i].To, true
	}
	t, _, ok := s.c.Page(ref)
	return t, ok
}

// set plans page ref's conversion to t (replacing an earlier step of the
// same page: a page converts once per plan), named by reason.
func (s *sim) set(ref kvcache.PageRef, t tensor.Type, reason string) {
	ref = s.c.Canonical(ref)
	st, ok := s.c.PlanStep(ref, t)
	if !ok {
		return
	}
	st.Reason = reason
	if i, ok := s.at[ref]; ok {
		s.bytes += int64(st.BytesAfter - s.plan.Steps[i].BytesAfter)
		s.plan.Steps[i] = st
		return
	}
	s.at[ref] = len(s.plan.Steps)
	s.plan.Steps = append(s.plan.Steps, st)
	s.bytes += int64(st.BytesAfter - st.BytesBefore)
}
