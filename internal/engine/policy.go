package engine

import (
	"sort"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// The cache policy's place in the loop: its rules applied before each
// step, room made under the budget, and run-time changes.

// applyPolicy runs the cache policy before a step: it plans — the page
// rules for every busy slot, then room under the budget for the pages
// this step will allocate, demoting the least recently used slots' oldest
// pages first — and the converter carries the plan out, every page at
// once in parallel. When even that leaves no room, idle slots' cached
// prompts are dropped; a slot that still cannot get its pages ends with a
// budget error (admission makes this rare: it happens when the budget is
// lowered at run time).
func (s *Scheduler) applyPolicy() {
	p := s.policy
	if p == nil || !p.Enabled() {
		return
	}
	// Count into a local record and add it to the shared counters under
	// the lock (Stats readers run concurrently).
	var st cachepolicy.Stats
	defer func() {
		s.mu.Lock()
		s.pstats.Add(st)
		s.mu.Unlock()
	}()
	in := s.planInput()
	pl, err := p.Plan(s.cache, in)
	s.conv.apply(pl, &st)
	if err == nil {
		return
	}
	for _, id := range in.Order { // drop idle slots' caches, least recently used first
		if sl := s.slots[id]; sl.state == slotIdle && len(sl.tokens) > 0 {
			s.spill(sl, 0)
			s.cache.Clear(id)
			sl.tokens = sl.tokens[:0]
			s.clearDraft(sl)
			if s.cache.Bytes()+s.cache.StateBytes()+s.cache.QueryStatBytes()+pl.Need <= p.Budget {
				return
			}
		}
	}
	pl, err = p.Plan(s.cache, in)
	s.conv.apply(pl, &st)
	for _, id := range in.Order { // the last step (opt-in): evict running requests' middle pages
		if err == nil || !p.Evict.On() {
			break
		}
		if sl := s.slots[id]; sl.state != slotIdle && s.evict(sl) {
			pl, err = p.Plan(s.cache, in)
			s.conv.apply(pl, &st)
		}
	}
	if err != nil {
		for i := len(in.Order) - 1; i >= 0; i-- { // newest request first
			sl := s.slots[in.Order[i]]
			if sl.adding == 0 || sl.state == slotIdle {
				continue
			}
			s.log.Warn("cache budget exhausted; ending request", "slot", sl.id, "err", err)
			sl.adding = 0
			s.finish(sl, "none", err)
			break
		}
	}
}

// evict drops a running request's middle pages as the policy's Evict
// says (the sink pages and the last window tokens stay; the tail moves
// down, keys re-roped, as a context shift does); it reports whether it
// dropped anything.
func (s *Scheduler) evict(sl *slot) bool {
	keep, discard := s.policy.Evict.Span(len(sl.tokens), s.cache.Config().PageTokens)
	if discard <= 0 {
		return false
	}
	if err := s.cache.Shift(sl.id, keep, discard, s.runner.ReRope); err != nil {
		s.log.Debug("eviction not possible", "slot", sl.id, "err", err)
		return false
	}
	sl.tokens = append(sl.tokens[:keep], sl.tokens[keep+discard:]...)
	if sl.reasonStart >= keep {
		sl.reasonStart = max(keep, sl.reasonStart-discard)
	}
	sl.res.EvictedTokens += discard
	s.mu.Lock()
	s.pstats.EvictedTokens += int64(discard)
	s.pstats.Evictions++
	s.mu.Unlock()
	s.log.Debug("cache budget: middle pages evicted", "slot", sl.id, "kept", keep, "evicted", discard)
	return true
}

// planInput is what the policy's plan needs to know of the slots: which
// run a request, the tokens each adds in this step and their roles, where
// a prompt's last page will also hold generated tokens, whether the
// answer has started, and the least-recently-used order.
func (s *Scheduler) planInput() cachepolicy.Input {
	in := cachepolicy.Input{Order: s.lruOrder()}
	P := s.cache.Config().PageTokens
	for _, sl := range s.slots {
		ss := cachepolicy.SeqState{Seq: sl.id, Active: sl.state != slotIdle, Adding: sl.adding}
		switch sl.state {
		case slotPrefill:
			ss.Next = 1 << kvcache.RolePrompt
			if end := len(sl.prompt); end%P != 0 {
				first := kvcache.RoleGenerated
				if sl.track.in {
					first = kvcache.RoleReasoning
				}
				ss.MixedPage, ss.MixedRoles = end/P, 1<<kvcache.RolePrompt|1<<first
			}
		case slotDecode:
			ss.Next = 1 << sl.role
			if ss.Answer = sl.track.answer; ss.Answer {
				ss.Next |= 1 << kvcache.RoleGenerated // the answer follows in the same page
			}
		}
		in.Seqs = append(in.Seqs, ss)
	}
	return in
}

// noteRole records the role of a just-sampled token (stored at the next
// step) and where the request's reasoning begins.
func (s *Scheduler) noteRole(sl *slot, piece string) {
	// The token is stored at the next step, at position len(sl.tokens).
	sl.role = sl.track.next(piece, len(sl.tokens))
	if sl.role == kvcache.RoleReasoning && sl.reasonStart < 0 {
		sl.reasonStart = len(sl.tokens) // the prompt opened the block
		if sl.track.start >= 0 {
			sl.reasonStart = sl.track.start
		}
	}
}

// dropReasoning cuts a finished request's slot before its reasoning when
// the policy drops reasoning: the slot's tokens and its cache end at the
// same place, so the next request reuses the prefix up to there only.
func (s *Scheduler) dropReasoning(sl *slot) {
	if !s.policy.DropReasoning() || sl.reasonStart < 0 || sl.reasonStart >= len(sl.tokens) {
		return
	}
	n := len(sl.tokens) - sl.reasonStart
	s.cache.Truncate(sl.id, sl.reasonStart)
	sl.tokens = sl.tokens[:sl.reasonStart]
	s.mu.Lock()
	s.pstats.DroppedTokens += int64(n)
	s.mu.Unlock()
	s.log.Debug("reasoning dropped from the slot's cache", "slot", sl.id, "tokens", n)
}

// pageStepCap bounds the tokens a slot adds in one step: under a cache
// budget, no more than fill its current page and one new page (the
// admission reservation counts one page at the write types per slot).
func (s *Scheduler) pageStepCap(sl *slot) int {
	if p := s.policy; p == nil || p.Budget == 0 {
		return len(sl.prompt)
	}
	P := s.cache.Config().PageTokens
	n := len(sl.tokens)
	return ((n+P-1)/P+1)*P - n
}

// lruOrder lists slots least recently used first: idle slots by when they
// finished, then busy slots by when their request began.
func (s *Scheduler) lruOrder() []int {
	ids := make([]int, len(s.slots))
	for i := range ids {
		ids[i] = i
	}
	key := func(sl *slot) (int, uint64) {
		if sl.state == slotIdle {
			return 0, sl.used
		}
		return 1, sl.begun
	}
	sort.SliceStable(ids, func(a, b int) bool {
		ga, ka := key(s.slots[ids[a]])
		gb, kb := key(s.slots[ids[b]])
		if ga != gb {
			return ga < gb
		}
		return ka < kb
	})
	return ids
}

// setPolicy validates and installs a policy (nil: none). Loop goroutine or
// constructor only.
func (s *Scheduler) setPolicy(p *cachepolicy.Policy) error {
	if p != nil {
		if err := p.Validate(s.e.Model.NLayer, s.e.Model.HeadDim, s.e.Model.HeadDimV); err != nil {
			return err
		}
		if err := s.e.checkEvict(p); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
	if p == nil {
		for _, sl := range s.slots {
			s.cache.SetSeqWriteTypes(sl.id, nil, nil)
			s.cache.SetPageWriteTypes(sl.id, -1, nil, nil)
		}
	}
	return nil
}

// SetPolicy changes the cache policy at run time, between two steps;
// running streams continue and later steps follow the new rules.
func (s *Scheduler) SetPolicy(p *cachepolicy.Policy) error {
	return s.Do(func(*kvcache.Cache) error { return s.setPolicy(p) })
}

// Policy returns the current policy (nil: none).
func (s *Scheduler) Policy() *cachepolicy.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}
