package engine

// Full contexts: what a slot does when its context fills during
// generation (context shift) and when a prompt does not fit (truncation),
// as llama-server does with --context-shift.

// shiftContext makes room in a full slot: it keeps the first n_keep tokens
// and drops the oldest half of the rest (rounded down to whole cache pages
// when that is at least a page, so pages move without being rebuilt),
// re-rotating the kept keys for their new positions. It reports whether it
// shifted (a window layer that released the kept prefix, or nothing to
// drop, means no).
func (s *Scheduler) shiftContext(sl *slot) bool {
	n := len(sl.tokens)
	keep := s.nKeep(sl.req, n)
	discard := (n - keep) / 2
	if P := s.cache.Config().PageTokens; discard >= P {
		discard -= discard % P
	}
	if discard <= 0 {
		return false
	}
	if err := s.cache.Shift(sl.id, keep, discard, s.runner.ReRope); err != nil {
		s.log.Warn("context shift not possible; ending the request", "slot", sl.id, "err", err)
		return false
	}
	sl.tokens = append(sl.tokens[:keep], sl.tokens[keep+discard:]...)
	if sl.reasonStart >= keep { // the reasoning moved down, or began in the dropped span
		sl.reasonStart = max(keep, sl.reasonStart-discard)
	}
	sl.res.ContextShifts++
	s.log.Debug("context shift", "slot", sl.id, "kept", keep, "dropped", discard)
	return true
}

// nKeep is how many leading tokens a shift or truncation keeps: the
// request's n_keep (-1: the whole prompt), plus the BOS token the model
// adds, never more than half the slot.
func (s *Scheduler) nKeep(r *Request, n int) int {
	keep := r.NKeep
	if keep < 0 {
		keep = len(r.Prompt)
	} else if s.e.BOS() >= 0 && len(r.Prompt) > 0 && r.Prompt[0] == s.e.BOS() {
		keep++
	}
	return min(keep, n/2, s.o.SlotCtx/2)
}

// truncatePrompt shortens a prompt that does not fit the slot as
// llama-server does: it keeps the first n_keep tokens and erases whole
// blocks of half the remaining context from the middle, so the end of the
// prompt (the part a model answers) is kept.
func (s *Scheduler) truncatePrompt(r *Request) []int {
	p := r.Prompt
	keep := s.nKeep(r, len(p))
	block := (s.o.SlotCtx - keep) / 2
	if block <= 0 {
		return p[len(p)-s.o.SlotCtx/2:]
	}
	erased := (len(p) - keep - block) / block
	out := append([]int(nil), p[:keep]...)
	return append(out, p[keep+erased*block:]...)
}

// reuseChunks extends a slot's reusable prefix past the first difference
// (llama-server's cache reuse): walking the cached tokens after the common
// prefix keep, every run of at least minChunk tokens that the prompt
// continues with is moved down to where the prompt has it (the cached
// span before it removed, keys re-rotated by Cache.Shift), and the prefix
// grows by it. It returns the new prefix length; sl.tokens follows the
// cache.
func (s *Scheduler) reuseChunks(sl *slot, prompt []int, keep, minChunk int) int {
	hc, hp := keep, keep
	moved := 0
	for hc < len(sl.tokens) && hp < len(prompt) {
		n := 0
		for hc+n < len(sl.tokens) && hp+n < len(prompt) && sl.tokens[hc+n] == prompt[hp+n] {
			n++
		}
		if n < minChunk {
			hc++
			continue
		}
		if hc > hp {
			if err := s.cache.Shift(sl.id, hp, hc-hp, s.runner.ReRope); err != nil {
				s.log.Debug("cache reuse stopped", "slot", sl.id, "err", err)
				break
			}
			sl.tokens = append(sl.tokens[:hp], sl.tokens[hc:]...)
		}
		hp += n
		hc = hp
		moved += n
		keep = hp
	}
	if moved > 0 {
		s.log.Debug("cache reuse", "slot", sl.id, "reused", moved, "prefix", keep)
	}
	return keep
}
