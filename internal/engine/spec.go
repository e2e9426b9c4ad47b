package engine

import (
	"fmt"
	"math"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/sample"
)

// Speculative decoding: a decoding slot's step feeds its last token and a
// draft of the tokens that may follow — from prompt lookup (an earlier
// occurrence of the context's last n-gram) or from a small draft model —
// and the target model scores them all in the same forward pass. Each
// drafted token is then decided by the speculative sampling rule
// (sample.Sampler.Verify): accepted with probability min(1, p/q), else
// the token comes from the residual distribution and the rest of the draft
// is dropped, along with its cache entries (kvcache.Truncate). Greedy
// output is the same token for token as without speculation (the forward
// pass is batch-invariant); sampled output has the same distribution.
//
// The draft model has its own paged cache, one sequence per slot, which
// follows the slot's tokens lazily: before drafting, the draft cache keeps
// the prefix it shares with the slot's context and evaluates the rest
// (after a prompt, that is the prompt). Cache policies' page rules act on
// it as on the target's cache, /cache/requantize converts it, and
// /cache/usage reports it.

// Default speculation settings (llama-server's).
const (
	DefaultDraftMax  = 16
	DefaultDraftPMin = 0.75
	DefaultNGram     = 3
)

// SpecOptions configure speculative decoding (SchedulerOptions.Spec).
type SpecOptions struct {
	// Draft is the draft model (nil: none). It must share the target's
	// vocabulary (CheckDraft). Its worker pool is not used: the draft
	// runs on the target's.
	Draft *Engine
	// DraftCache are the draft cache's settings (-ctkd/-ctvd).
	DraftCache CacheOptions
	// Lookup drafts by prompt lookup (n-gram) when there is no draft model.
	Lookup bool
	// NGram is the longest n-gram prompt lookup matches (0: DefaultNGram);
	// shorter ones are tried down to one token.
	NGram int
	// Max is the most tokens drafted per step (0: DefaultDraftMax); Min,
	// the fewest worth verifying (a shorter draft is not used); PMin, the
	// draft model's least top-token probability to keep drafting
	// (0: DefaultDraftPMin; negative: 0).
	Max, Min int
	PMin     float32
	// Adapt makes the draft model's draft length adapt as prompt
	// lookup's always does: it starts at 4, doubles after a wholly
	// accepted draft and falls to one more than was accepted after a
	// rejection, within Max. Drafted tokens past the first rejection are
	// the draft model's wasted passes; where its distributions are too
	// flat for PMin to stop it (random-weight models) this bounds them.
	Adapt bool
}

// Enabled reports whether any drafting is configured.
func (o *SpecOptions) Enabled() bool { return o != nil && (o.Draft != nil || o.Lookup) }

// SpecParams are a request's speculation settings (llama-server's
// speculative.n_max, speculative.n_min, speculative.p_min); nil fields
// keep the server's.
type SpecParams struct {
	NMax, NMin *int
	PMin       *float32
}

// CheckDraft checks that draft can draft for target: the same tokens with
// the same ids (a draft vocabulary may differ in size by up to 128 tokens,
// as llama.cpp allows; tokens only one of them has are never drafted).
func CheckDraft(target, draft *Engine) error {
	nt, nd := target.Tok.VocabSize(), draft.Tok.VocabSize()
	if d := nt - nd; d > 128 || d < -128 {
		return fmt.Errorf("draft model vocabulary of %d tokens differs from the target's %d by more than 128", nd, nt)
	}
	for id := range min(nt, nd) {
		if a, b := target.Tok.TokenText(id), draft.Tok.TokenText(id); a != b {
			return fmt.Errorf("draft model token %d is %q where the target's is %q: the vocabularies differ", id, b, a)
		}
	}
	if target.Tok.AddBOS() != draft.Tok.AddBOS() || (target.Tok.AddBOS() && target.Tok.BOS() != draft.Tok.BOS()) {
		return fmt.Errorf("draft model and target add different BOS tokens")
	}
	return nil
}

// specState is the scheduler's speculation machinery.
type specState struct {
	o      SpecOptions
	draft  *Engine
	cache  *kvcache.Cache // the draft's cache (nil: prompt lookup only)
	runner *model.Runner
	conv   converter
	batch  model.Batch
}

func (s *Scheduler) newSpec(o SpecOptions) error {
	if o.Max <= 0 {
		o.Max = DefaultDraftMax
	}
	if o.PMin == 0 {
		o.PMin = DefaultDraftPMin
	}
	if o.NGram <= 0 {
		o.NGram = DefaultNGram
	}
	sp := &specState{o: o, draft: o.Draft}
	if d := o.Draft; d != nil {
		if err := CheckDraft(s.e, d); err != nil {
			return err
		}
		c, err := d.NewCache(o.DraftCache, s.o.Slots, s.o.SlotCtx)
		if err != nil {
			return fmt.Errorf("draft cache: %w", err)
		}
		sp.cache = c
		sp.runner = model.NewRunner(d.Model, s.e.Pool, s.o.Batch)
		sp.runner.SetContext(s.o.SlotCtx)
		sp.conv = converter{cache: c, pool: s.e.Pool}
		for l := 0; l < d.Model.NLayer; l++ {
			if c.Attn(l).Window > 0 {
				s.hasWindow = true // the draft's rollback is bounded the same way
			}
		}
	}
	s.spec = sp
	return nil
}

// DraftCache returns the draft model's cache (nil when there is none). Use
// it only within Do.
func (s *Scheduler) DraftCache() *kvcache.Cache {
	if s.spec == nil {
		return nil
	}
	return s.spec.cache
}

// Speculative returns the speculation settings in use, defaults resolved
// (nil: no speculation).
func (s *Scheduler) Speculative() *SpecOptions {
	if s.spec == nil {
		return nil
	}
	o := s.spec.o
	return &o
}

// DraftEngine returns the draft model (nil: none).
func (s *Scheduler) DraftEngine() *Engine {
	if s.spec == nil {
		return nil
	}
	return s.spec.draft
}

// clearDraft empties the draft model's cache of sl (its next draft
// evaluates the slot's context again).
func (s *Scheduler) clearDraft(sl *slot) {
	if s.spec != nil && s.spec.cache != nil {
		s.spec.cache.Clear(sl.id)
		sl.dtokens = sl.dtokens[:0]
	}
}

// trimDraft drops from the draft model's cache of sl what is not a prefix
// of toks (rejected drafts).
func (s *Scheduler) trimDraft(sl *slot, toks []int) {
	if s.spec == nil || s.spec.cache == nil {
		return
	}
	if p := commonPrefix(sl.dtokens, toks); p < len(sl.dtokens) {
		s.spec.cache.Truncate(sl.id, p)
		sl.dtokens = sl.dtokens[:p]
	}
}

// specLimits returns the request's drafting settings.
func (s *Scheduler) specLimits(r *Request) (nMax, nMin int, pMin float32) {
	o := &s.spec.o
	nMax, nMin, pMin = o.Max, o.Min, o.PMin
	if p := r.Spec; p != nil {
		if p.NMax != nil {
			nMax = *p.NMax
		}
		if p.NMin != nil {
			nMin = *p.NMin
		}
		if p.PMin != nil {
			pMin = *p.PMin
		}
	}
	return nMax, nMin, pMin
}

// makeDrafts drafts tokens for the decoding slots (those adding their last
// token in this step), within budget tokens of the batch, and returns how
// many tokens it drafted in all.
func (s *Scheduler) makeDrafts(budget int) int {
	var withModel []*slot
	for _, sl := range s.slots {
		sl.draft, sl.dq = sl.draft[:0], sl.dq[:0]
		if sl.state != slotDecode || sl.adding != 1 || sl.req.Grammar != nil || budget <= 0 {
			continue
		}
		r := sl.req
		nMax, nMin, pMin := s.specLimits(r)
		n0 := len(sl.tokens) // the position of sl.last
		k := min(nMax, budget,
			cap(sl.out)-len(sl.out)-2, // an event per token and the end
			s.o.SlotCtx-n0-2)          // verification never reaches the context's end
		if r.NPredict >= 0 {
			k = min(k, r.NPredict-len(sl.res.Tokens)-1)
		}
		if s.hasWindow {
			// Rolling back more than a page could need a window page
			// already released (kvcache keeps one page of slack).
			k = min(k, s.shape.PageTokens)
		}
		if k < max(1, nMin) {
			continue
		}
		sl.dmax, sl.dmin, sl.dpmin = k, nMin, pMin
		// A lookup draft's length adapts (and a model draft's with
		// Adapt): it doubles after a wholly accepted draft and falls to
		// what was accepted after a rejection (a wrong guess costs
		// verification work, not output).
		if sl.dnext <= 0 {
			sl.dnext = 4
		}
		if s.spec.cache != nil {
			if s.spec.o.Adapt {
				sl.dmax = max(min(k, sl.dnext), nMin)
			}
			withModel = append(withModel, sl)
			continue
		}
		sl.draft = lookupDraft(sl.draft, sl.tokens, sl.last, s.spec.o.NGram, min(k, sl.dnext))
		budget -= len(sl.draft)
	}
	if len(withModel) > 0 {
		s.draftWithModel(withModel, budget)
	}
	n := 0
	for _, sl := range s.slots {
		if len(sl.draft) > 0 && len(sl.draft) < sl.dmin {
			sl.draft, sl.dq = sl.draft[:0], sl.dq[:0]
		}
		sl.adding += len(sl.draft)
		n += len(sl.draft)
	}
	return n
}

// lookupDraft is prompt lookup: it finds the latest earlier occurrence of
// the context's last n tokens (context = toks followed by last), for n from
// ngram down to 1, and drafts the up to k tokens that followed it.
func lookupDraft(dst, toks []int, last, ngram, k int) []int {
	L := len(toks) + 1
	at := func(i int) int {
		if i == len(toks) {
			return last
		}
		return toks[i]
	}
	for n := min(ngram, L-1); n >= 1; n-- {
		// Candidate starts i of an earlier occurrence of the suffix
		// toks[L-n:L], latest first; its continuation starts at i+n < L.
		for i := L - n - 1; i >= 0; i-- {
			match := true
			for j := 0; j < n; j++ {
				if at(i+j) != at(L-n+j) {
					match = false
					break
				}
			}
			if !match {
				continue
			}
			for j := i + n; j < L && len(dst) < k; j++ {
				dst = append(dst, at(j))
			}
			return dst
		}
	}
	return dst
}

// draftWithModel runs the draft model for the slots: it brings each slot's
// draft cache up to the slot's context (one batch per Batch tokens, every
// slot together), then drafts one token per slot per forward pass until
// each slot's draft is long enough or the draft model is unsure.
func (s *Scheduler) draftWithModel(sls []*slot, budget int) {
	sp := s.spec
	c := sp.cache
	V := min(sp.draft.Model.NVocab, s.e.Model.NVocab)
	b := &sp.batch
	// Catch up: the draft cache keeps its common prefix with the slot's
	// context (its tokens and the last one) and evaluates the rest.
	feed := make([][]int, len(sls))
	from := make([]int, len(sls))
	for i, sl := range sls {
		// At most len(sl.tokens): the last token is fed again for its logits.
		p := c.Reusable(sl.id, commonPrefix(sl.dtokens, sl.tokens))
		c.Truncate(sl.id, p)
		sl.dtokens = append(sl.dtokens[:p], sl.tokens[p:]...)
		sl.dtokens = append(sl.dtokens, sl.last)
		feed[i], from[i] = sl.dtokens[p:], p
		if sl.dsmp == nil {
			sl.dsmp = s.draftSampler(sl)
		}
	}
	active := make([]bool, len(sls))
	for {
		b.Tokens, b.Pos, b.Seq, b.Output = b.Tokens[:0], b.Pos[:0], b.Seq[:0], b.Output[:0]
		var outs []int // which slots get logits in this pass
		for i, sl := range sls {
			if len(feed[i]) == 0 {
				continue
			}
			n := min(len(feed[i]), s.o.Batch-len(b.Tokens))
			if n == 0 {
				break
			}
			c.SetWriteRole(sl.id, sl.role)
			for j := 0; j < n; j++ {
				b.Tokens = append(b.Tokens, feed[i][j])
				b.Pos = append(b.Pos, from[i]+j)
				b.Seq = append(b.Seq, sl.id)
				last := n == len(feed[i]) && j == n-1
				b.Output = append(b.Output, last)
				if last {
					outs = append(outs, i)
				}
			}
			s.copyRoles(sl, from[i], from[i]+n)
			feed[i], from[i] = feed[i][n:], from[i]+n
		}
		if len(b.Tokens) == 0 {
			break
		}
		logits, err := sp.runner.Forward(b, c)
		if err != nil {
			s.log.Error("draft forward pass failed", "err", err)
			for _, sl := range sls {
				sl.draft, sl.dq = sl.draft[:0], sl.dq[:0]
				c.Clear(sl.id)
				sl.dtokens = sl.dtokens[:0]
			}
			return
		}
		dv := sp.draft.Model.NVocab
		for r, i := range outs {
			sl := sls[i]
			active[i] = s.draftNext(sl, logits[r*dv:r*dv+V], &budget)
			if active[i] && len(sl.draft) < sl.dmax && budget > 0 {
				// Feed the drafted token to draft the next one.
				feed[i], from[i] = []int{sl.draft[len(sl.draft)-1]}, len(sl.dtokens)
				sl.dtokens = append(sl.dtokens, feed[i][0])
			}
		}
	}
}

// draftNext draws the next draft token of sl from the draft model's logits
// and reports whether it did. A draft stops when the draft model's most
// probable token has a probability (plain softmax) below p-min, as
// llama.cpp's does: the decision depends only on the logits, never on the
// token drawn, which keeps verification exact.
func (s *Scheduler) draftNext(sl *slot, logits []float32, budget *int) bool {
	if *budget <= 0 {
		return false
	}
	if sl.dpmin > 0 {
		mx := logits[0]
		for _, v := range logits {
			mx = max(mx, v)
		}
		if math.Exp(float64(mx)-sample.LogSumExp(logits)) < float64(sl.dpmin) {
			return false
		}
	}
	if len(sl.dq) < cap(sl.dq) {
		sl.dq = sl.dq[:len(sl.dq)+1]
	} else {
		sl.dq = append(sl.dq, sample.Dist{})
	}
	q := &sl.dq[len(sl.dq)-1]
	*q = sl.dsmp.Distribution(logits, *q)
	tok := sl.dsmp.DrawFrom(*q)
	if tok < 0 || tok >= s.e.Model.NVocab {
		sl.dq = sl.dq[:len(sl.dq)-1]
		return false
	}
	sl.draft = append(sl.draft, tok)
	*budget--
	return true
}

// draftSampler is the draft model's sampler for a request: the request's
// filters and temperature without penalties (the rule needs only that q be
// the distribution each draft token is drawn from), seeded apart.
func (s *Scheduler) draftSampler(sl *slot) *sample.Sampler {
	p := sl.req.Sample
	p.RepeatLastN, p.RepeatPenalty, p.PresencePenalty, p.FrequencyPenalty = 0, 1, 0, 0
	p.Seed = (sl.smp.Seed() + 0x9E3779B9) & 0xFFFFFFFF
	if p.Seed == sample.RandomSeed {
		p.Seed--
	}
	smp, err := sample.New(p, min(s.e.Model.NVocab, s.spec.draft.Model.NVocab))
	if err != nil { // the request's parameters were validated
		panic(err)
	}
	return smp
}

// copyRoles gives the draft cache's positions [from, to) of sl the roles
// the target's cache has for them.
func (s *Scheduler) copyRoles(sl *slot, from, to int) {
	tr := s.cache.Roles(sl.id)
	for pos := from; pos < min(to, len(tr)); pos++ {
		s.spec.cache.SetRole(sl.id, pos, tr[pos])
	}
}

// emitSpec decides a speculating slot's drafted tokens against the
// target's logits (rows r0 .. r0+len(draft) of logits: the last token's,
// then each draft token's) and emits the accepted ones, then the token
// the target chose after them. Rejected tokens leave the cache.
func (s *Scheduler) emitSpec(sl *slot, logits []float32, r0 int) {
	V := s.e.Model.NVocab
	k := len(sl.draft)
	full := sl.tokens // ..., last, draft...
	n0 := len(full) - 1 - k
	row := func(i int) []float32 { return logits[(r0+i)*V : (r0+i+1)*V] }
	toks := sl.vtoks[:0]
	acc := 0
	for i := 0; i <= k; i++ {
		sl.pd = sl.smp.Distribution(row(i), sl.pd)
		var tok int
		ok := false
		if i < k {
			var q *sample.Dist
			if i < len(sl.dq) {
				q = &sl.dq[i]
			}
			tok, ok = sl.smp.Verify(sl.pd, q, sl.draft[i])
		} else {
			tok = sl.smp.DrawFrom(sl.pd)
		}
		sl.smp.Accept(tok)
		toks = append(toks, tok)
		if !ok {
			break
		}
		acc++
	}
	sl.vtoks = toks
	if acc == k {
		sl.dnext = min(2*max(sl.dnext, k), 1024)
	} else {
		sl.dnext = max(acc+1, 2)
	}
	sl.res.DraftN += k
	sl.res.DraftAccepted += acc
	s.mu.Lock()
	s.stats.DraftTokens += int64(k)
	s.stats.DraftAccepted += int64(acc)
	s.mu.Unlock()
	// The cache keeps the last token and the accepted drafts; so does
	// the draft model's.
	s.cache.Truncate(sl.id, n0+1+acc)
	s.trimDraft(sl, full[:n0+1+acc])
	for j, tok := range toks {
		sl.tokens = full[:n0+1+j] // as without speculation: tokens fed so far
		s.emitToken(sl, row(j), tok)
		if sl.state != slotDecode {
			s.cache.Truncate(sl.id, len(sl.tokens))
			s.trimDraft(sl, sl.tokens)
			return
		}
		if j < acc {
			// The token is in the cache already (it was drafted): its
			// role is now known.
			s.cache.SetRole(sl.id, n0+1+j, sl.role)
		}
	}
	sl.tokens = full[:n0+1+acc]
}

// applyDraftPolicy runs the cache policy's page rules on the draft cache
// (its budget counts the target's cache only).
func (s *Scheduler) applyDraftPolicy() {
	p := s.policy
	if p == nil || !p.Enabled() || s.spec == nil || s.spec.cache == nil {
		return
	}
	dp := *p
	dp.Budget = 0
	if !dp.Enabled() {
		return
	}
	var st cachepolicy.Stats
	in := s.planInput()
	for i := range in.Seqs {
		in.Seqs[i].Adding = 0
	}
	pl, err := dp.Plan(s.spec.cache, in)
	if err != nil {
		return
	}
	s.spec.conv.apply(pl, &st)
	s.mu.Lock()
	s.pstats.Add(st)
	s.mu.Unlock()
}

// AcceptanceRate is accepted over drafted tokens (NaN when none drafted).
func AcceptanceRate(drafted, accepted int) float64 {
	if drafted == 0 {
		return math.NaN()
	}
	return float64(accepted) / float64(drafted)
}

// LoadDraft opens a draft model for target: it runs on target's worker
// pool, and its vocabulary must match (CheckDraft). An empty path loads the
// embedded default model. Close releases only the draft's file.
func LoadDraft(path string, target *Engine) (*Engine, error) {
	d, err := Load(path, 1)
	if err != nil {
		return nil, err
	}
	d.Pool.Close()
	d.Pool = target.Pool
	d.sharedPool = true
	if err := CheckDraft(target, d); err != nil {
		d.Close()
		return nil, fmt.Errorf("draft model %s: %w", d.Path, err)
	}
	return d, nil
}
