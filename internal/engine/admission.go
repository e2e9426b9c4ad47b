package engine

import (
	"fmt"
	"time"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/sample"
)

// Admission: which queued request starts in which slot, and when (the
// cache budget's reservations, prefix reuse, pinned slots).

// canAssign reports whether assign has work: a queued request that could
// start now, or one to drop (cancelled, or refused for want of a slot).
func (s *Scheduler) canAssign() bool {
	for _, p := range s.queue {
		if p.ctx.Err() != nil || p.req.NoQueue || s.neverFits(p.req) != nil || s.pickSlot(p, nil) != nil && s.fits(p.req) {
			return true
		}
	}
	return false
}

// maxLen is the most tokens a request can occupy in its slot.
func (s *Scheduler) maxLen(r *Request) int {
	n := r.NPredict
	if n < 0 {
		n = s.o.SlotCtx
	}
	return min(len(r.Prompt)+n, s.o.SlotCtx)
}

// fits reports whether a request can start under the cache budget: the
// reservations of the running requests and its own (see reserve) fit
// (idle slots' caches can be dropped).
func (s *Scheduler) fits(r *Request) bool {
	p := s.policy
	if p == nil || p.Budget == 0 {
		return true
	}
	need := s.reserve(p, r)
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			need += s.reserve(p, sl.req)
		}
	}
	return need <= p.Budget
}

// neverFits returns an error wrapping cachepolicy.ErrBudget when a request
// alone needs more than the budget (it could wait forever).
func (s *Scheduler) neverFits(r *Request) error {
	p := s.policy
	if p == nil || p.Budget == 0 {
		return nil
	}
	if need := s.reserve(p, r); need > p.Budget {
		return fmt.Errorf("%w: this request needs %d bytes of cache (%d tokens at the lowest types, plus the page being written at the write types), over the budget of %d bytes", cachepolicy.ErrBudget, need, s.maxLen(r), p.Budget)
	}
	return nil
}

// reserve is the most cache a request can need under a budget: its
// longest context with every page at the bottom of the ladders, except
// the page being written, at the write types (new pages are allocated at
// tier 0, and under a budget a slot allocates at most one page per step,
// so the budget can always demote every other page to make room for it).
//
// It reads only the cache's fixed shape and the policy (a budget implies
// ladders), so Submit can call it while the loop converts pages.
func (s *Scheduler) reserve(p *cachepolicy.Policy, r *Request) int64 {
	if len(p.LadderK) == 0 || len(p.LadderV) == 0 {
		return 0 // no budget without ladders (Policy.Validate)
	}
	sh := &s.shape
	// Each layer at the bottom of its own ladder (per-layer cold types);
	// recurrent layers hold state, no pages.
	low := p.BottomPageBytes(*sh)
	write := max(p.TopPageBytes(*sh), low)
	n := s.maxLen(r)
	if p.Evict.On() { // eviction keeps a slot within its sinks and window
		n = min(n, p.Evict.MaxTokens(sh.PageTokens))
	}
	pages := int64((n + sh.PageTokens - 1) / sh.PageTokens)
	// A hybrid model's slot also holds its recurrent state and its
	// checkpoints, f32 whatever the ladders; with --cache-key-encode query,
	// its query statistics.
	sh1 := *sh
	sh1.Seqs = 1
	return (pages-1)*low + write + kvcache.StateCapacityFor(sh1) + kvcache.QueryStatCapacityFor(sh1)
}

// pickSlot chooses an idle slot: the requested one, else the one whose
// cached tokens share the longest prefix with the prompt, else the least
// recently used — preferring slots that no queued request is pinned to
// (wanted), so an unpinned request does not take the slot a pinned one
// waits for while another is idle.
func (s *Scheduler) pickSlot(p *pending, wanted []bool) *slot {
	r, set := p.req, s.requestAdapters(p)
	if r.SlotID >= 0 {
		if sl := s.slots[r.SlotID]; sl.state == slotIdle {
			return sl
		}
		return nil
	}
	// With prefix sharing, the whole pages some slot holds of the prompt
	// can be had in any slot: among slots reusing as many pages, one that
	// loses no cached tokens of another conversation is taken (an empty
	// slot rather than the one whose conversation shares only the system
	// prompt), then the longest own prefix, then the least recently used.
	P := s.cache.Config().PageTokens
	shareable := 0
	if r.CachePrompt && !s.o.NoSharePrefix {
		for _, sl := range s.slots {
			if sl.reusable(set) {
				shareable = max(shareable, commonPrefix(sl.tokens, r.Prompt)/P*P)
			}
		}
	}
	var best *slot
	bestLCP, bestPages, bestLoss := -1, -1, 0
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			continue
		}
		if wanted != nil && wanted[sl.id] && s.idleUnwanted(wanted) {
			continue
		}
		n := 0
		if r.CachePrompt && sl.reusable(set) {
			n = commonPrefix(sl.tokens, r.Prompt)
		}
		pages, loss := max(n, shareable)/P, min(len(sl.tokens)-n, 1)
		if shareable == 0 { // no sharing: the longest prefix, then least recently used
			pages, loss = 0, 0
		}
		better := pages > bestPages || pages == bestPages && (loss < bestLoss ||
			loss == bestLoss && (n > bestLCP || n == bestLCP && sl.used < best.used))
		if better {
			best, bestLCP, bestPages, bestLoss = sl, n, pages, loss
		}
	}
	return best
}

// idleUnwanted reports whether some idle slot is not wanted by a pinned
// request.
func (s *Scheduler) idleUnwanted(wanted []bool) bool {
	for _, sl := range s.slots {
		if sl.state == slotIdle && !wanted[sl.id] {
			return true
		}
	}
	return false
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// assign moves queued requests into free slots, in arrival order (a
// request that cannot start yet — its pinned slot busy, or no room under
// the budget — does not hold back those behind it). Called with s.mu held.
func (s *Scheduler) assign() {
	var wanted []bool
	for _, p := range s.queue {
		if p.req.SlotID >= 0 && p.ctx.Err() == nil {
			if wanted == nil {
				wanted = make([]bool, len(s.slots))
			}
			wanted[p.req.SlotID] = true
		}
	}
	kept := s.queue[:0]
	for _, p := range s.queue {
		if p.ctx.Err() != nil {
			p.stop()
			p.out <- Event{Err: p.ctx.Err()}
			close(p.out)
			continue
		}
		if err := s.neverFits(p.req); err != nil {
			s.stats.BudgetRejections++
			p.stop()
			p.out <- Event{Err: err}
			close(p.out)
			continue
		}
		sl := s.pickSlot(p, wanted)
		if sl == nil || !s.fits(p.req) {
			if p.req.NoQueue {
				p.stop()
				p.out <- Event{Err: ErrNoSlot}
				close(p.out)
				continue
			}
			if d := s.o.Disk; d != nil && p.req.CachePrompt && !p.prefetch {
				// It waits: have the RAM tier read its entry meanwhile.
				p.prefetch = true
				d.Prefetch(p.req.Prompt, s.cache.Config().PageTokens, string(s.requestAdapters(p)))
			}
			kept = append(kept, p)
			continue
		}
		p.stop()
		s.start(sl, p)
	}
	for i := len(kept); i < len(s.queue); i++ {
		s.queue[i] = nil
	}
	s.queue = kept
	s.stats.Processing = 0
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			s.stats.Processing++
		}
	}
}

func (s *Scheduler) start(sl *slot, p *pending) {
	r := p.req
	keep := 0
	// Cached tokens computed under another adapter set are not reused,
	// shared or loaded from the disk tier.
	set := s.requestAdapters(p)
	reuse := r.CachePrompt && sl.reusable(set)
	if reuse {
		keep = commonPrefix(sl.tokens, r.Prompt)
		if r.CacheReuse > 0 {
			keep = s.reuseChunks(sl, r.Prompt, keep, r.CacheReuse)
		}
		if keep == len(r.Prompt) {
			keep-- // re-evaluate the last token to get its logits
		}
		// A sliding-window layer may have released pages the new tokens
		// would attend: then the prompt is evaluated again.
		keep = s.cache.Reusable(sl.id, keep)
		// The policy keeps no page below the precision it gives the
		// new context (an old conversation's demoted pages).
		keep = s.policy.Reusable(s.cache, sl.id, keep, len(r.Prompt))
	}
	s.spill(sl, keep) // what the slot loses, to the disk tier
	shared, loaded := 0, 0
	if r.CachePrompt && !s.o.NoSharePrefix {
		keep, shared = s.sharePrefix(sl, r, set, keep)
	}
	if r.CachePrompt {
		if n := s.loadFromDisk(sl, r, set, keep); n > 0 {
			keep, shared, loaded = n, 0, n
		}
	}
	s.cache.Truncate(sl.id, keep)
	sl.tokens = sl.tokens[:keep]
	sl.adapters = set
	sl.lora = r.Lora
	smp, err := sample.New(r.Sample, s.e.Model.NVocab)
	if err != nil { // validated at Submit; keep the loop safe anyway
		p.out <- Event{Err: err}
		close(p.out)
		return
	}
	sl.req, sl.ctx, sl.out = r, p.ctx, p.out
	sl.prompt = r.Prompt
	sl.next = keep
	sl.smp = smp
	sl.gm = p.gm
	sl.dec = s.e.Tok.NewContinuationDecoder(r.Special)
	sl.text.Reset()
	sl.sent = 0
	sl.newLine, sl.lineAt, sl.lineNext, sl.cut = false, -1, 0, false
	sl.cost = 0
	sl.state = slotPrefill
	sl.begun = s.step
	sl.track, sl.role, sl.reasonStart = newRoleTracker(r.Reasoning), kvcache.RoleGenerated, -1
	sl.tStart = time.Now()
	if s.policy != nil {
		s.cache.SetSeqWriteTypes(sl.id, nil, nil) // the policy sets them again
		s.cache.SetPageWriteTypes(sl.id, -1, nil, nil)
	}
	sl.res = &Result{SlotID: sl.id, PromptTokens: len(r.Prompt), CachedTokens: keep, SharedTokens: shared, DiskTokens: loaded, EvaluatedTokens: len(r.Prompt) - keep, Truncated: p.truncated}
	for _, t := range r.Prompt {
		smp.Accept(t)
	}
	s.stats.Requests++
	if r.Started != nil {
		close(r.Started)
	}
}

// sharePrefix looks for another slot holding more whole pages of the
// prompt's start than sl would keep of its own (keep positions), pages the
// policy lets the new context reuse; when there is one, sl's cache is
// emptied and made to share those pages (copy-on-write), and the shared
// positions are returned as both what sl keeps and what it shares (else
// keep and 0). At least the prompt's last token is left to evaluate, for
// its logits.
func (s *Scheduler) sharePrefix(sl *slot, r *Request, set AdapterSet, keep int) (int, int) {
	P := s.cache.Config().PageTokens
	var donor *slot
	best := 0
	for _, d := range s.slots {
		if d == sl || !d.reusable(set) {
			continue
		}
		n := min(commonPrefix(d.tokens, r.Prompt), len(r.Prompt)-1)
		n = s.cache.Reusable(d.id, n)
		n = s.policy.Reusable(s.cache, d.id, n, len(r.Prompt))
		if n = n / P * P; n > max(best, keep) {
			donor, best = d, n
		}
	}
	if donor == nil {
		return keep, 0
	}
	s.cache.Clear(sl.id)
	n := s.cache.SharePrefix(sl.id, donor.id, best/P)
	sl.tokens = append(sl.tokens[:0], r.Prompt[:n]...)
	return n, n
}
