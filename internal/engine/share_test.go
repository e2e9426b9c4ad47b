package engine_test

import (
	"context"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// Slots whose prompts start with the same system prompt share its whole
// pages: the second request evaluates only what follows them, the cache
// holds the shared pages once, and greedy outputs equal those of a
// scheduler that does not share.
func TestSharedPrefixPages(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	system := "You are a helpful assistant who answers questions about the weather, the sea and the mountains. Be brief."
	prompts := [][]int{
		e.Tok.Encode(system+" Where is the sea?", true, true),
		e.Tok.Encode(system+" How high are the mountains?", true, true),
		e.Tok.Encode(system+" Is it raining?", true, true),
	}
	const P = 16
	run := func(share bool) (outs [][]int, results []*engine.Result, bytes, sharedBytes int64) {
		co := engine.DefaultCacheOptions()
		co.PageTokens = P
		s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 3, SlotCtx: 256, Cache: co, NoSharePrefix: !share})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		defer s.Close()
		for i, p := range prompts {
			ch, err := s.Submit(context.Background(), &engine.Request{Prompt: p, NPredict: 12, Sample: greedy(),
				SlotID: i, IgnoreEOS: true, CachePrompt: true})
			if err != nil {
				t.Fatal(err)
			}
			for ev := range ch {
				if ev.Err != nil {
					t.Fatal(ev.Err)
				}
				if ev.Done != nil {
					outs = append(outs, ev.Done.Tokens)
					results = append(results, ev.Done)
				}
			}
		}
		s.Do(func(c *kvcache.Cache) error {
			bytes = c.Bytes()
			sharedBytes, _ = c.SharedBytes()
			return nil
		})
		return
	}
	plain, pr, plainBytes, _ := run(false)
	shared, sr, sharedTotal, sharedBytes := run(true)
	common := 0
	for common < len(prompts[0]) && prompts[0][common] == prompts[1][common] && prompts[0][common] == prompts[2][common] {
		common++
	}
	pages := common / P
	if pages < 1 {
		t.Fatalf("the prompts share %d tokens, less than a page", common)
	}
	for i := range prompts {
		if len(plain[i]) != len(shared[i]) {
			t.Fatalf("request %d: %d tokens shared, %d plain", i, len(shared[i]), len(plain[i]))
		}
		for j := range plain[i] {
			if plain[i][j] != shared[i][j] {
				t.Fatalf("request %d: output differs at %d with shared pages:\n%v\n%v", i, j, shared[i], plain[i])
			}
		}
		if pr[i].SharedTokens != 0 || pr[i].CachedTokens != 0 {
			t.Errorf("request %d without sharing: cached %d shared %d", i, pr[i].CachedTokens, pr[i].SharedTokens)
		}
		want := 0
		if i > 0 {
			want = pages * P
		}
		if sr[i].SharedTokens != want || sr[i].CachedTokens != want || sr[i].EvaluatedTokens != len(prompts[i])-want {
			t.Errorf("request %d with sharing: cached %d shared %d evaluated %d, want %d shared", i,
				sr[i].CachedTokens, sr[i].SharedTokens, sr[i].EvaluatedTokens, want)
		}
	}
	// Each shared page is held once: two slots' copies are saved.
	cfg := e.Model
	pageBytes := int64(cfg.NLayer) * int64(P) * int64(cfg.NHeadKV) * int64(cfg.HeadDim+cfg.HeadDimV) * 2 // f16
	if saved := plainBytes - sharedTotal; saved != 2*int64(pages)*pageBytes || sharedBytes != int64(pages)*pageBytes {
		t.Errorf("bytes %d plain, %d shared (%d in shared pages): saved %d, want %d", plainBytes, sharedTotal, sharedBytes,
			saved, 2*int64(pages)*pageBytes)
	}
	t.Logf("%d-token common prefix, %d shared pages: %d bytes without sharing, %d with", common, pages, plainBytes, sharedTotal)
}

// With sharing, a new conversation that shares only the system prompt
// with an idle slot's takes an empty slot and shares the system prompt's
// pages, so the first conversation's cache survives for its next turn.
func TestSharingKeepsOtherConversations(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 2, SlotCtx: 256, Cache: co})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	run := func(prompt []int) *engine.Result {
		t.Helper()
		ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 6, Sample: greedy(),
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
	system := "You are a helpful assistant who answers questions about the weather, the sea and the mountains. Be brief."
	a := e.Tok.Encode(system+" Where is the sea?", true, true)
	ra := run(a)
	rb := run(e.Tok.Encode(system+" How high are the mountains?", true, true))
	if rb.SlotID == ra.SlotID || rb.SharedTokens == 0 {
		t.Errorf("second conversation: slot %d (first in %d), %d shared tokens", rb.SlotID, ra.SlotID, rb.SharedTokens)
	}
	next := append(append(append([]int(nil), a...), ra.Tokens...), e.Tok.Encode(" And then?", false, true)...)
	if rn := run(next); rn.SlotID != ra.SlotID || rn.CachedTokens < len(a)+len(ra.Tokens)-1 {
		t.Errorf("first conversation's next turn: slot %d (was %d), %d cached of %d", rn.SlotID, ra.SlotID, rn.CachedTokens, len(a)+len(ra.Tokens))
	}
}
