package engine_test

import (
	"context"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Under --dynamic-cache, a new conversation that shares only the BOS
// token with the slot's previous one does not reuse its demoted page 0
// (the rule gives a short context f16), while a continuation of the long
// conversation reuses its pages as they are (issue 17).
func TestPolicyDecidesPageReuse(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	steps, err := cachepolicy.ParseLengths("0:f16,64:q4_0")
	if err != nil {
		t.Fatal(err)
	}
	k, v := cachepolicy.DefaultLadders()
	pol := &cachepolicy.Policy{LadderK: k, LadderV: v, LengthK: steps, LengthV: steps}
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Cache: co, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	run := func(prompt []int, n int) *engine.Result {
		t.Helper()
		ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: n, Sample: greedy(),
			SlotID: -1, IgnoreEOS: true, CachePrompt: true})
		if err != nil {
			t.Fatal(err)
		}
		var res *engine.Result
		for ev := range ch {
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if ev.Done != nil {
				res = ev.Done
			}
		}
		return res
	}
	page0 := func() tensor.Type {
		var typ tensor.Type
		s.Do(func(c *kvcache.Cache) error {
			typ, _, _ = c.Page(kvcache.PageRef{Seq: 0, Layer: 0, Index: 0})
			return nil
		})
		return typ
	}

	long := e.Tok.Encode("Once upon a time there was a little girl who lived in a village near the forest.", true, true)
	r1 := run(long, 80)
	if got := page0(); got != tensor.Q4_0 {
		t.Fatalf("after %d tokens page 0 is %s, want q4_0 (the length rule)", len(long)+80, got)
	}
	// The same conversation goes on: its pages are at the type the rule
	// gives the longer context, so they are reused.
	cont := append(append(append([]int(nil), long...), r1.Tokens...), e.Tok.Encode(" The end.", false, true)...)
	if r := run(cont, 4); r.CachedTokens < len(long)+len(r1.Tokens)-1 {
		t.Errorf("continuation reused %d of %d cached tokens", r.CachedTokens, len(long)+len(r1.Tokens))
	}
	// A new conversation sharing only BOS: nothing reused, page 0 at f16.
	short := e.Tok.Encode("The weather today is cold.", true, true)
	if short[0] != long[0] || short[1] == long[1] {
		t.Fatalf("prompts should share exactly the first token: %v / %v", short[:2], long[:2])
	}
	if r := run(short, 4); r.CachedTokens != 0 {
		t.Errorf("a new conversation reused %d demoted tokens", r.CachedTokens)
	}
	if got := page0(); got != tensor.F16 {
		t.Errorf("new conversation's page 0 is %s, want f16", got)
	}
}
