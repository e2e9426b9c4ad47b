package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/tensor"
)

func loadHybrid(t *testing.T) *engine.Engine {
	t.Helper()
	p, err := synth.Lookup("tiny-qwen3next")
	if err != nil {
		t.Fatal(err)
	}
	ft, err := synth.ParseFileType("f16")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hybrid.gguf")
	if err := synth.WriteFile(path, &synth.Options{Preset: p, Type: ft, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Load(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// A multi-turn chat on a hybrid model: the second turn resumes from the
// live recurrent state or the latest state checkpoint at or before the
// common prefix, so it evaluates only its new tokens plus at most one
// page; a requantization between turns changes only the attention layers'
// bytes (the recurrent state stays f32) and the next turn still resumes.
func TestHybridMultiTurnResumes(t *testing.T) {
	e := loadHybrid(t)
	const P = 32
	co := engine.DefaultCacheOptions()
	co.PageTokens = P
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 1024, Cache: co})
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
	toks := func(n, seed int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = (i*7919 + seed*131 + 11) % 8000
		}
		return out
	}
	turn1 := toks(150, 1)
	r1 := run(turn1, 20)
	if r1.EvaluatedTokens != 150 {
		t.Fatalf("first turn evaluated %d tokens", r1.EvaluatedTokens)
	}
	// The next turn repeats the history up to a re-tokenised answer (its
	// last 5 tokens differ), then a new message.
	common := len(turn1) + 15
	turn2 := append(append(append([]int(nil), turn1...), r1.Tokens[:15]...), toks(25, 2)...)
	r2 := run(turn2, 4)
	fresh := len(turn2) - common
	t.Logf("turn 2: %d prompt tokens, %d new, %d evaluated, %d cached", len(turn2), fresh, r2.EvaluatedTokens, r2.CachedTokens)
	if r2.EvaluatedTokens > fresh+P || r2.CachedTokens < common-P {
		t.Errorf("turn 2 evaluated %d tokens (cached %d), want at most %d new + one page of %d", r2.EvaluatedTokens, r2.CachedTokens, fresh, P)
	}

	var before, after, stBefore, stAfter int64
	s.Do(func(c *kvcache.Cache) error { before, stBefore = c.Bytes(), c.StateBytes(); return nil })
	q8 := tensor.Q8_0
	rep, err := s.Requantize(kvcache.Target{K: &q8, V: &q8}, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Do(func(c *kvcache.Cache) error { after, stAfter = c.Bytes(), c.StateBytes(); return nil })
	for _, l := range rep.Layers {
		if e.Model.IsRecurrent(l.Layer) {
			t.Errorf("requantize reported recurrent layer %d", l.Layer)
		}
	}
	if after >= before || stAfter != stBefore || rep.StateBytes != stBefore {
		t.Errorf("requantize: KV %d → %d bytes, state %d → %d (report %d): want KV smaller, state unchanged", before, after, stBefore, stAfter, rep.StateBytes)
	}
	// Turn 3 continues exactly where the cache is: nothing re-evaluated.
	turn3 := append(append(append([]int(nil), turn2...), r2.Tokens...), toks(10, 3)...)
	r3 := run(turn3, 2)
	if r3.EvaluatedTokens > 10+1+P {
		t.Errorf("turn 3 evaluated %d tokens, want about 11", r3.EvaluatedTokens)
	}
}

// What a hybrid model's state cannot do is refused with a clear error:
// context shift, chunk reuse (n_cache_reuse), speculative decoding.
func TestHybridRefusals(t *testing.T) {
	e := loadHybrid(t)
	_, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 256, Cache: engine.DefaultCacheOptions(), ContextShift: true})
	if err == nil || !strings.Contains(err.Error(), "context-shift") || !strings.Contains(err.Error(), "hybrid") {
		t.Errorf("context shift: err = %v", err)
	}
	_, err = e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 256, Cache: engine.DefaultCacheOptions(),
		Spec: &engine.SpecOptions{Lookup: true}})
	if err == nil || !strings.Contains(err.Error(), "speculative") {
		t.Errorf("speculative decoding: err = %v", err)
	}
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 256, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	_, err = s.Submit(context.Background(), &engine.Request{Prompt: []int{1, 2, 3}, NPredict: 1, Sample: greedy(), SlotID: -1, CacheReuse: 16, CachePrompt: true})
	if err == nil || !strings.Contains(err.Error(), "n_cache_reuse") {
		t.Errorf("cache reuse: err = %v", err)
	}
	// Eviction: refused at start (--cache-evict) and when set at run time,
	// before any step runs with it; a policy without it is accepted.
	ev := &cachepolicy.Policy{LadderK: []tensor.Type{tensor.F16}, LadderV: []tensor.Type{tensor.F16}, Budget: 1 << 20,
		Evict: cachepolicy.Evict{Sinks: 16, Window: 128}}
	_, err = e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 256, Cache: engine.DefaultCacheOptions(), Policy: ev})
	if err == nil || !strings.Contains(err.Error(), "cache-evict") || !strings.Contains(err.Error(), "hybrid") {
		t.Errorf("--cache-evict: err = %v", err)
	}
	err = s.SetPolicy(ev)
	if err == nil || !strings.Contains(err.Error(), "eviction needs a cache without recurrent state") || !strings.Contains(err.Error(), "qwen3next is hybrid") {
		t.Errorf("live eviction policy: err = %v", err)
	}
	if s.Policy() != nil {
		t.Errorf("the refused policy was set: %v", s.Policy())
	}
	noEv := *ev
	noEv.Evict = cachepolicy.Evict{}
	if err := s.SetPolicy(&noEv); err != nil {
		t.Errorf("policy without eviction: %v", err)
	}
}

// The cache tiers (--cache-disk, --cache-ram, both) on a hybrid model:
// users taking turns over one slot have their conversations spilled with
// the recurrent state and its checkpoints, and loaded back (after a
// restart too: a new scheduler over the same tier) instead of being
// evaluated again; the greedy outputs equal those of a slot per user that
// never drops anything.
func TestHybridDiskTier(t *testing.T) {
	e := loadHybrid(t)
	for _, tier := range []string{"disk", "ram", "ram+disk"} {
		t.Run(tier, func(t *testing.T) { testHybridTier(t, e, tier) })
	}
}

func testHybridTier(t *testing.T, e *engine.Engine, tier string) {
	const users, turns, P = 3, 3, 32
	var o cachedisk.Options
	o.Key = "hybrid"
	if strings.Contains(tier, "disk") {
		o.Dir = t.TempDir()
	}
	if strings.Contains(tier, "ram") {
		o.RAM = 64 << 20
	}
	// A restart closes the tier (its writer finishes) and opens the same
	// directory again; a RAM-only tier is kept across it.
	var cur *cachedisk.Tier
	newSched := func(slots int, disk bool) *engine.Scheduler {
		co := engine.DefaultCacheOptions()
		co.PageTokens = P
		so := engine.SchedulerOptions{Slots: slots, SlotCtx: 1024, Cache: co}
		if disk {
			if cur == nil || o.Dir != "" {
				if cur != nil {
					cur.Close()
				}
				d, err := cachedisk.OpenWith(o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(d.Close)
				cur = d
			}
			so.Disk = cur
		}
		s, err := e.NewScheduler(so)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		return s
	}
	run := func(s *engine.Scheduler, prompt []int, slot int) *engine.Result {
		t.Helper()
		ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 6, Sample: greedy(),
			SlotID: slot, IgnoreEOS: true, CachePrompt: true})
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
	msg := func(u, k int) []int {
		out := make([]int, 40)
		for i := range out {
			out[i] = (i*7919+u*131+k*977+11)%8000 + 1
		}
		return out
	}
	conversations := func(s *engine.Scheduler, pinned bool, from, to int, convs [][]int) (outs [][]int, evaluated, loaded int) {
		for k := from; k < to; k++ {
			for u := 0; u < users; u++ {
				convs[u] = append(convs[u], msg(u, k)...)
				slot := -1
				if pinned {
					slot = u
				}
				r := run(s, convs[u], slot)
				evaluated += r.EvaluatedTokens
				loaded += r.DiskTokens
				outs = append(outs, r.Tokens)
				convs[u] = append(convs[u], r.Tokens...)
			}
		}
		return outs, evaluated, loaded
	}
	ref := newSched(users, false)
	want, refEval, _ := conversations(ref, true, 0, turns, make([][]int, users))
	ref.Close()

	s := newSched(1, true)
	convs := make([][]int, users)
	got, diskEval, loaded := conversations(s, false, 0, turns-1, convs)
	s.Close()
	s = newSched(1, true) // a restart: the same directory
	got2, diskEval2, loaded2 := conversations(s, false, turns-1, turns, convs)
	s.Close()
	got = append(got, got2...)
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("turn %d: output %v with the tier, %v with a slot per user", i, got[i], want[i])
		}
	}
	t.Logf("prompt tokens evaluated: %d with a slot per user, %d over one slot with the %s tier (%d loaded, %d of them after a restart)",
		refEval, diskEval+diskEval2, tier, loaded+loaded2, loaded2)
	if loaded == 0 || loaded2 == 0 {
		t.Errorf("tokens loaded from the tier: %d before the restart, %d after", loaded, loaded2)
	}
}
