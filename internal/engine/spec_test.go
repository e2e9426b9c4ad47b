package engine_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

// rewritePrompt is a "rewrite this code with one change" prompt: the
// answer repeats most of the prompt, which prompt lookup drafts.
const rewritePrompt = `def add(a, b):
    return a + b

def sub(a, b):
    return a - b

def mul(a, b):
    return a * b

def add(a, b):
    return a + b

def sub(a, b):
`

// runSpec generates with one scheduler and returns each request's result.
func runSpec(t *testing.T, e *engine.Engine, o engine.SchedulerOptions, reqs []*engine.Request) []*engine.Result {
	t.Helper()
	s, err := e.NewScheduler(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	chs := make([]<-chan engine.Event, len(reqs))
	for i, r := range reqs {
		r := *r
		if chs[i], err = s.Submit(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]*engine.Result, len(reqs))
	for i, ch := range chs {
		_, out[i] = collect(t, ch)
	}
	return out
}

// selfDraft loads the embedded model and the same model as its own draft
// (both closed when the test ends).
func selfDraft(t *testing.T) (e, draft *engine.Engine) {
	t.Helper()
	e = tierEngine(t)
	draft, err := engine.LoadDraft("", e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(draft.Close)
	return e, draft
}

// Greedy output with speculation is the output without it, token for
// token, whatever drafts (prompt lookup, the same model as its own draft,
// a different draft), with several slots at once and with penalties.
func TestSpecGreedyIdentical(t *testing.T) {
	e, self := selfDraft(t)
	pen := greedy()
	pen.RepeatPenalty, pen.RepeatLastN = 1.1, 64
	var reqs []*engine.Request
	for _, p := range []string{rewritePrompt, "Once upon a time", strings.Repeat("the cat sat on the mat. ", 6)} {
		for _, sp := range []sample.Params{greedy(), pen} {
			reqs = append(reqs, &engine.Request{Prompt: e.Tok.Encode(p, true, true), NPredict: 40, Sample: sp, SlotID: -1, IgnoreEOS: true})
		}
	}
	base := engine.SchedulerOptions{Slots: 3, SlotCtx: 512, Cache: engine.DefaultCacheOptions()}
	want := runSpec(t, e, base, reqs)
	cases := []struct {
		name string
		spec engine.SpecOptions
		all  bool // every draft token is accepted (the draft samples without penalties)
	}{
		{"lookup", engine.SpecOptions{Lookup: true}, false},
		{"lookup-max4", engine.SpecOptions{Lookup: true, Max: 4, NGram: 1}, false},
		{"self-draft", engine.SpecOptions{Draft: self, DraftCache: engine.DefaultCacheOptions(), PMin: -1}, true},
		{"self-draft-q4", engine.SpecOptions{Draft: self, DraftCache: engine.CacheOptions{TypeK: "q4_0", TypeV: "q4_0"}, Max: 5}, false},
		{"self-draft-q4-adapt", engine.SpecOptions{Draft: self, DraftCache: engine.CacheOptions{TypeK: "q4_0", TypeV: "q4_0"}, Max: 12, PMin: -1, Adapt: true}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkIdentical(t, e, o(base, c.spec), reqs, want, c.all) })
	}
}

func o(base engine.SchedulerOptions, sp engine.SpecOptions) engine.SchedulerOptions {
	base.Spec = &sp
	return base
}

// checkIdentical runs reqs with speculation and compares with want.
func checkIdentical(t *testing.T, e *engine.Engine, o engine.SchedulerOptions, reqs []*engine.Request, want []*engine.Result, all bool) {
	got := runSpec(t, e, o, reqs)
	drafted, accepted := 0, 0
	for i := range reqs {
		if !slices.Equal(got[i].Tokens, want[i].Tokens) {
			t.Errorf("request %d: with speculation\n%q\nwithout\n%q", i, got[i].Text, want[i].Text)
		}
		drafted += got[i].DraftN
		accepted += got[i].DraftAccepted
		if all && reqs[i].Sample.RepeatPenalty == 1 && got[i].DraftAccepted != got[i].DraftN {
			t.Errorf("request %d: %d of %d drafted tokens accepted from the model itself", i, got[i].DraftAccepted, got[i].DraftN)
		}
	}
	if drafted == 0 || accepted == 0 {
		t.Errorf("drafted %d, accepted %d: speculation did not run", drafted, accepted)
	}
	t.Logf("drafted %d, accepted %d (%.0f%%)", drafted, accepted, 100*engine.AcceptanceRate(drafted, accepted))
}

// With Adapt, a draft model's draft length follows its acceptance: where
// drafts are rejected it drafts fewer tokens than at a fixed length (the
// draft passes past a rejection are wasted) for the same output, and it
// accepts at least as large a share of them.
func TestSpecDraftAdapt(t *testing.T) {
	e, self := selfDraft(t)
	var reqs []*engine.Request
	for _, p := range []string{"Once upon a time", "The Linux kernel", rewritePrompt} {
		reqs = append(reqs, &engine.Request{Prompt: e.Tok.Encode(p, true, true), NPredict: 64, Sample: greedy(), SlotID: -1, IgnoreEOS: true})
	}
	base := engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Cache: engine.DefaultCacheOptions()}
	want := runSpec(t, e, base, reqs)
	// A draft cache at 2.5 bits makes the self-draft disagree at times.
	sp := engine.SpecOptions{Draft: self, DraftCache: engine.CacheOptions{TypeK: "cb2", TypeV: "cb2"}, Max: 16, PMin: -1}
	count := func(rs []*engine.Result) (d, a int) {
		for i, r := range rs {
			if !slices.Equal(r.Tokens, want[i].Tokens) {
				t.Errorf("request %d: output differs from greedy without speculation", i)
			}
			d += r.DraftN
			a += r.DraftAccepted
		}
		return d, a
	}
	fd, fa := count(runSpec(t, e, o(base, sp), reqs))
	sp.Adapt = true
	ad, aa := count(runSpec(t, e, o(base, sp), reqs))
	t.Logf("fixed 16: drafted %d, accepted %d; adaptive: drafted %d, accepted %d", fd, fa, ad, aa)
	if fa == fd {
		t.Fatalf("every one of %d drafted tokens accepted: no rejection to adapt to", fd)
	}
	if ad >= fd || aa == 0 {
		t.Errorf("adaptive drafted %d (accepted %d), fixed %d: not fewer", ad, aa, fd)
	}
	if float64(aa)/float64(ad) < float64(fa)/float64(fd) {
		t.Errorf("adaptive acceptance %d/%d below fixed %d/%d", aa, ad, fa, fd)
	}
}

// A draft that is a different file of the same model (f16 drafting for the
// embedded Q8_0) agrees often but not always: greedy output is unchanged.
func TestSpecGreedyOtherDraft(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d, err := engine.LoadDraft(testassets.Path(t, "models/kvtest-27m-f16.gguf"), e)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var reqs []*engine.Request
	for _, p := range []string{rewritePrompt, "Once upon a time", "The Linux kernel"} {
		reqs = append(reqs, &engine.Request{Prompt: e.Tok.Encode(p, true, true), NPredict: 48, Sample: greedy(), SlotID: -1, IgnoreEOS: true})
	}
	base := engine.SchedulerOptions{Slots: 2, SlotCtx: 512, Cache: engine.DefaultCacheOptions()}
	want := runSpec(t, e, base, reqs)
	checkIdentical(t, e, o(base, engine.SpecOptions{Draft: d, DraftCache: engine.DefaultCacheOptions()}), reqs, want, false)
}

// Sampled speculation runs to the requested length and counts its drafts;
// its distribution is sample.Verify's (tested there).
func TestSpecSampled(t *testing.T) {
	e, self := selfDraft(t)
	p := sample.DefaultParams()
	p.Seed = 7
	reqs := []*engine.Request{{Prompt: e.Tok.Encode(rewritePrompt, true, true), NPredict: 48, Sample: p, SlotID: -1, IgnoreEOS: true}}
	for _, sp := range []engine.SpecOptions{{Lookup: true}, {Draft: self}} {
		o := engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Cache: engine.DefaultCacheOptions(), Spec: &sp}
		res := runSpec(t, e, o, reqs)[0]
		if len(res.Tokens) != 48 || res.DraftN == 0 {
			t.Errorf("%d tokens, %d drafted", len(res.Tokens), res.DraftN)
		}
		t.Logf("drafted %d, accepted %d", res.DraftN, res.DraftAccepted)
	}
}

// The cache policy's page rules act on the draft model's cache too, and
// speculation keeps greedy output unchanged under a policy and through
// context shifts.
func TestSpecPolicyAndShift(t *testing.T) {
	e, d := selfDraft(t)
	lk, lv := cachepolicy.DefaultLadders()
	pol := &cachepolicy.Policy{LadderK: lk, LadderV: lv, Hot: 16, Sink: 16, Warm: 16}
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	reqs := []*engine.Request{{Prompt: e.Tok.Encode(strings.Repeat(rewritePrompt, 2), true, true), NPredict: 240, Sample: greedy(), SlotID: -1, IgnoreEOS: true}}
	base := engine.SchedulerOptions{Slots: 1, SlotCtx: 256, Cache: co, Policy: pol, ContextShift: true}
	want := runSpec(t, e, base, reqs)
	for _, sp := range []engine.SpecOptions{{Lookup: true}, {Draft: d, DraftCache: co}} {
		o := base
		o.Spec = &sp
		s, err := e.NewScheduler(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		r := *reqs[0]
		ch, err := s.Submit(context.Background(), &r)
		if err != nil {
			t.Fatal(err)
		}
		_, res := collect(t, ch)
		if !slices.Equal(res.Tokens, want[0].Tokens) || res.ContextShifts == 0 {
			t.Errorf("draft %v: %d context shifts; with speculation\n%q\nwithout\n%q", sp.Draft != nil, res.ContextShifts, res.Text, want[0].Text)
		}
		if sp.Draft != nil {
			s.Do(func(*kvcache.Cache) error {
				by := s.DraftCache().BytesByType()
				if by[tensor.F16] == 0 || len(by) < 2 {
					t.Errorf("draft cache bytes by type %v: the policy did not demote its old pages", by)
				}
				return nil
			})
		}
		s.Close()
	}
}

// Sampled output keeps its distribution under speculation: the second and
// third generated tokens (the ones drafts decide) of many seeded requests
// have the same distribution with prompt lookup as without (a two-sample
// chi-square test; deterministic for the seeds given).
func TestSpecSampledDistribution(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const n = 600
	prompt := e.Tok.Encode(rewritePrompt, true, true)
	reqs := func(seed0 int) []*engine.Request {
		var rs []*engine.Request
		for i := range n {
			p := sample.DefaultParams()
			p.Temperature, p.TopK, p.Seed = 1.0, 0, uint64(seed0+i)
			rs = append(rs, &engine.Request{Prompt: prompt, NPredict: 3, Sample: p, SlotID: -1, IgnoreEOS: true, CachePrompt: true})
		}
		return rs
	}
	// Different seeds: the two samples must be independent.
	base := engine.SchedulerOptions{Slots: 4, SlotCtx: 128, Cache: engine.DefaultCacheOptions()}
	plain := runSpec(t, e, base, reqs(1000))
	spec := runSpec(t, e, o(base, engine.SpecOptions{Lookup: true}), reqs(5000))
	drafted, accepted := 0, 0
	for _, r := range spec {
		drafted += r.DraftN
		accepted += r.DraftAccepted
	}
	if accepted == 0 || accepted == drafted {
		t.Fatalf("drafted %d, accepted %d: the test needs both outcomes", drafted, accepted)
	}
	for pos := 1; pos < 3; pos++ {
		a, b := map[int]int{}, map[int]int{}
		for i := range n {
			a[plain[i].Tokens[pos]]++
			b[spec[i].Tokens[pos]]++
		}
		// Categories with few counts are pooled.
		var chi float64
		other := [2]int{}
		df := -1
		for tok := range union(a, b) {
			if a[tok]+b[tok] < 10 {
				other[0] += a[tok]
				other[1] += b[tok]
				continue
			}
			d := float64(a[tok] - b[tok])
			chi += d * d / float64(a[tok]+b[tok])
			df++
		}
		if other[0]+other[1] > 0 {
			d := float64(other[0] - other[1])
			chi += d * d / float64(other[0]+other[1])
			df++
		}
		// About the 0.999 quantile of chi-square with df degrees.
		crit := float64(df) + 4.5*math.Sqrt(2*float64(df)) + 4
		t.Logf("token %d: chi-square %.1f, %d degrees of freedom (critical %.1f); drafted %d, accepted %d", pos+1, chi, df, crit, drafted, accepted)
		if chi > crit {
			t.Errorf("token %d: distributions differ with speculation (chi-square %.1f > %.1f)", pos+1, chi, crit)
		}
	}
}

func union(a, b map[int]int) map[int]bool {
	u := map[int]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}
