package engine

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/perplexity"
)

// ChunkEvaluator returns an evaluator for the perplexity harness: every
// chunk is processed from an empty cache in micro-batches of batch tokens,
// with logits computed only for the scored positions.
func (e *Engine) ChunkEvaluator(cache *kvcache.Cache, batch int) perplexity.ChunkEvaluator {
	r := model.NewRunner(e.Model, e.Pool, batch)
	r.SetContext(cache.Config().Ctx)
	V := e.Model.NVocab
	return func(tokens []int, from int, fn func(pos int, logits []float32)) error {
		cache.Clear(0)
		n := len(tokens)
		out := make([]bool, batch)
		for i := 0; i < n; i += batch {
			j := min(i+batch, n)
			for k := i; k < j; k++ {
				out[k-i] = k >= from && k < n-1
			}
			b := &model.Batch{Tokens: tokens[i:j], Pos: seq(i, j), Output: out[:j-i]}
			logits, err := r.Forward(b, cache)
			if err != nil {
				return err
			}
			o := 0
			for k := i; k < j; k++ {
				if out[k-i] {
					fn(k, logits[o*V:(o+1)*V])
					o++
				}
			}
		}
		return nil
	}
}

// BitsTracker records the bits per cached value a growing-context run's
// cache held, averaged over the evaluated tokens (each token weighted by
// the cache it was evaluated against) and at the end.
type BitsTracker struct {
	sum, weight float64
	Final       float64
}

// Mean is the token-weighted average of bits per cached value.
func (b *BitsTracker) Mean() float64 {
	if b.weight == 0 {
		return 0
	}
	return b.sum / b.weight
}

// BitsPerValue returns the average bits per value of the positions seq
// holds (each page's type weighted by the positions it holds), with the
// pages' channel statistics (key channel means) counted in full.
func BitsPerValue(c *kvcache.Cache, seq int) float64 {
	cfg := c.Config()
	var bits, vals float64
	for _, p := range c.Pages(seq) {
		n := float64(p.Tokens * cfg.KVHeads)
		if p.V {
			n *= float64(cfg.HeadDimV)
		} else {
			n *= float64(cfg.HeadDimK)
		}
		bits += n*p.Type.BitsPerValue() + 8*float64(p.MetaBytes)
		vals += n
	}
	if vals == 0 {
		return 0
	}
	return bits / vals
}

// RoleSpan marks token positions [From, To) of every chunk as tokens of
// a role (the rest is prompt), so a policy's rules by role are measured
// as they would apply: generated output, or reasoning (the answer starts
// after a reasoning span).
type RoleSpan struct {
	Role     kvcache.Role
	From, To int
}

// ParseSpans parses "generated:2048-4096,reasoning:1024-2048" (a missing
// end: to the end of the chunk).
func ParseSpans(s string) ([]RoleSpan, error) {
	var out []RoleSpan
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, rng, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("%q: want ROLE:FROM-TO, e.g. generated:2048-4096", f)
		}
		role, err := kvcache.ParseRole(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		lo, hi, _ := strings.Cut(rng, "-")
		sp := RoleSpan{Role: role, To: math.MaxInt}
		if sp.From, err = strconv.Atoi(strings.TrimSpace(lo)); err != nil || sp.From < 0 {
			return nil, fmt.Errorf("%q: FROM must be a non-negative position", f)
		}
		if hi = strings.TrimSpace(hi); hi != "" {
			if sp.To, err = strconv.Atoi(hi); err != nil || sp.To <= sp.From {
				return nil, fmt.Errorf("%q: TO must be a position after FROM", f)
			}
		}
		for _, o := range out {
			if sp.From < o.To && o.From < sp.To {
				return nil, fmt.Errorf("%q overlaps another span", f)
			}
		}
		out = append(out, sp)
	}
	return out, nil
}

// roleAt returns the role of position i, and the next position at which
// the role may change.
func roleAt(spans []RoleSpan, i int) (kvcache.Role, int) {
	next := math.MaxInt
	for _, sp := range spans {
		if i >= sp.From && i < sp.To {
			return sp.Role, sp.To
		}
		if sp.From > i {
			next = min(next, sp.From)
		}
	}
	return kvcache.RolePrompt, next
}

// GrowingOptions configure GrowingEvaluator.
type GrowingOptions struct {
	Step   int                 // tokens per forward pass (between policy applications)
	Policy *cachepolicy.Policy // nil: none
	Spans  []RoleSpan          // roles of chunk positions (the rest: prompt)
	Bits   *BitsTracker        // nil: not tracked
	Stats  *cachepolicy.Stats  // the policy's conversions (nil: not counted)
}

// GrowingEvaluator evaluates each chunk as one growing context, the way a
// long chat fills its cache: micro-batches of o.Step tokens (split where
// a span's role changes), with the policy (if any) planned and carried
// out between them by the converter, as the server does between decode
// steps.
func (e *Engine) GrowingEvaluator(cache *kvcache.Cache, o GrowingOptions) perplexity.ChunkEvaluator {
	step := max(o.Step, 1)
	r := model.NewRunner(e.Model, e.Pool, step)
	r.SetContext(cache.Config().Ctx)
	V := e.Model.NVocab
	P := cache.Config().PageTokens
	conv := converter{cache: cache, pool: e.Pool}
	p := o.Policy
	return func(tokens []int, from int, fn func(pos int, logits []float32)) error {
		cache.Clear(0)
		cache.SetSeqWriteTypes(0, nil, nil)
		cache.SetPageWriteTypes(0, -1, nil, nil)
		n := len(tokens)
		out := make([]bool, step)
		answer := false
		evicted := 0 // positions evicted (Evict) so far
		for i := 0; i < n; {
			role, change := roleAt(o.Spans, i)
			j := min(i+step, n, change)
			if role != kvcache.RoleReasoning && i > 0 {
				if prev, _ := roleAt(o.Spans, i-1); prev == kvcache.RoleReasoning {
					answer = true
				}
			}
			if p != nil && p.Enabled() {
				ss := cachepolicy.SeqState{Seq: 0, Active: true, Adding: j - i, Next: 1 << role, Answer: answer}
				if change < n && change%P != 0 {
					next, _ := roleAt(o.Spans, change)
					ss.MixedPage, ss.MixedRoles = change/P, 1<<role|1<<next
				}
				in := cachepolicy.Input{Seqs: []cachepolicy.SeqState{ss}, Order: []int{0}}
				pl, err := p.Plan(cache, in)
				var st cachepolicy.Stats
				conv.apply(pl, &st)
				if err != nil && p.Evict.On() { // the budget's last step, as the scheduler's
					keep, discard := p.Evict.Span(cache.Len(0), P)
					if discard > 0 && cache.Shift(0, keep, discard, r.ReRope) == nil {
						evicted += discard
						st.Evictions++
						st.EvictedTokens += int64(discard)
						pl, err = p.Plan(cache, in)
						conv.apply(pl, &st)
					}
				}
				if o.Stats != nil {
					o.Stats.Add(st)
				}
				if err != nil {
					return err
				}
			}
			cache.SetWriteRole(0, role)
			for k := i; k < j; k++ {
				out[k-i] = k >= from && k < n-1
			}
			// Positions are the cache's: evicted middle pages moved the rest down.
			b := &model.Batch{Tokens: tokens[i:j], Pos: seq(i-evicted, j-evicted), Output: out[:j-i]}
			logits, err := r.Forward(b, cache)
			if err != nil {
				return err
			}
			if o.Bits != nil {
				bpv := BitsPerValue(cache, 0)
				o.Bits.sum += bpv * float64(j-i)
				o.Bits.weight += float64(j - i)
				o.Bits.Final = bpv
			}
			row := 0
			for k := i; k < j; k++ {
				if out[k-i] {
					fn(k, logits[row*V:(row+1)*V])
					row++
				}
			}
			i = j
		}
		return nil
	}
}
