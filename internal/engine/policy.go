package engine

import (
	"sort"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// The cache policy's place in the loop: its rules applied before each
// step, room made under the budget, and run-time changes.

// applyPolicy runs the cache policy before a step: age and length rules
// for every busy slot, then room under the budget for the pages this step
// will allocate — demoting the least recently used slots' oldest pages
// first, then dropping idle slots' cached prompts. A slot that still
// cannot get its pages ends with a budget error (admission makes this
// rare: it happens when the budget is lowered at run time).
func (s *Scheduler) applyPolicy() {
	p := s.policy
	if p == nil || !p.Enabled() {
		return
	}
	// Count into a local record and add it to the shared counters under
	// the lock (Stats readers run concurrently).
	st := cachepolicy.Stats{OnDemote: s.pstats.OnDemote}
	defer func() {
		s.mu.Lock()
		s.pstats.Add(st)
		s.mu.Unlock()
	}()
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			p.Apply(s.cache, sl.id, &st)
		}
	}
	if p.Budget == 0 {
		return
	}
	P := s.cache.Config().PageTokens
	need := int64(0)
	for _, sl := range s.slots {
		if sl.adding > 0 {
			n := s.cache.Len(sl.id) + sl.adding
			pages := (n+P-1)/P - s.cache.NumPages(sl.id, 0)
			need += int64(max(pages, 0)) * cachepolicy.PageBytes(s.cache, sl.id)
		}
	}
	order := s.lruOrder()
	if err := p.MakeRoom(s.cache, need, order, &st); err == nil {
		return
	}
	for _, id := range order { // drop idle slots' caches, least recently used first
		if sl := s.slots[id]; sl.state == slotIdle && len(sl.tokens) > 0 {
			s.cache.Clear(id)
			sl.tokens = sl.tokens[:0]
			if s.cache.Bytes()+need <= p.Budget {
				return
			}
		}
	}
	if err := p.MakeRoom(s.cache, need, order, &st); err != nil {
		for i := len(order) - 1; i >= 0; i-- { // newest request first
			sl := s.slots[order[i]]
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
		if err := p.Validate(s.e.Model.HeadDim, s.e.Model.HeadDimV); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
	if p == nil {
		for _, sl := range s.slots {
			s.cache.SetSeqWriteTypes(sl.id, nil, nil)
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
