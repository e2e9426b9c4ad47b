package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Issue 17's figure: eight users take ten turns each, round robin, over two
// slots under a cache budget that fits one conversation. Without the tiers
// a returning user's whole conversation is evaluated again; with them (a
// 4 MiB RAM tier in front of the disk tier) it is loaded — from RAM, or
// from disk after a restart of the scheduler on the same directory.
// The prompt tokens evaluated must drop at least 5×, the greedy outputs
// must equal those of eight slots with no budget, and the cache must never
// hold more than the budget between steps. The ladders are f16 only, so
// the budget drops idle slots' caches rather than demoting pages (which
// would change the outputs).
func TestTiersEightUsersTenTurns(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const users, turns, restartAt, P = 8, 10, 8, 16
	// kvtest-27m: a 16-token page of all layers, K and V, at f16 is 64 KiB;
	// 20 pages hold one conversation (at most ~300 tokens), not two.
	const budget = 20 * 64 << 10
	dir := t.TempDir()
	var over atomic.Int64
	var ramHits, diskHits int64
	newSched := func(slots int, budgeted, disk bool) (*engine.Scheduler, func()) {
		co := engine.DefaultCacheOptions()
		co.PageTokens = P
		o := engine.SchedulerOptions{Slots: slots, SlotCtx: 512, Cache: co}
		if budgeted {
			o.Policy = &cachepolicy.Policy{LadderK: []tensor.Type{tensor.F16}, LadderV: []tensor.Type{tensor.F16}, Budget: budget}
		}
		var d *cachedisk.Tier
		if disk { // a RAM tier of 4 MiB in front of the disk tier
			if d, err = cachedisk.OpenWith(cachedisk.Options{Dir: dir, Key: "test", RAM: 4 << 20}); err != nil {
				t.Fatal(err)
			}
			o.Disk = d
		}
		s, err := e.NewScheduler(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		stop, watched := make(chan struct{}), make(chan struct{})
		go func() { // the cache's bytes, between every two steps
			defer close(watched)
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Do(func(c *kvcache.Cache) error {
					if b := c.Bytes(); budgeted && b > budget {
						over.Store(b)
					}
					return nil
				})
			}
		}()
		return s, func() {
			close(stop)
			<-watched
			s.Close()
			if d != nil {
				d.Close()
				st := d.Stats()
				ramHits += st.RAMHits
				diskHits += st.Hits - st.RAMHits
			}
		}
	}
	run := func(s *engine.Scheduler, prompt []int, slot int) *engine.Result {
		t.Helper()
		ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 8, Sample: greedy(),
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
	type tally struct{ evaluated, loaded int }
	conversations := func(s *engine.Scheduler, pinned bool, from, to int, convs [][]int, tl *tally) (outs [][]int) {
		for k := from; k < to; k++ {
			for u := 0; u < users; u++ {
				if convs[u] == nil {
					convs[u] = e.Tok.Encode(fmt.Sprintf("A conversation with user %d.", u), true, true)
				}
				convs[u] = append(convs[u], e.Tok.Encode(fmt.Sprintf(" User %d asks question number %d about the weather in the mountains today.", u, k), false, true)...)
				slot := -1
				if pinned {
					slot = u
				}
				r := run(s, convs[u], slot)
				tl.evaluated += r.EvaluatedTokens
				tl.loaded += r.DiskTokens
				outs = append(outs, r.Tokens)
				convs[u] = append(convs[u], r.Tokens...)
			}
		}
		return outs
	}

	var ref, plain, tiered, after tally
	s, stop := newSched(users, false, false)
	want := conversations(s, true, 0, turns, make([][]int, users), &ref)
	stop()
	s, stop = newSched(2, true, false)
	conversations(s, false, 0, turns, make([][]int, users), &plain)
	stop()
	convs := make([][]int, users)
	s, stop = newSched(2, true, true)
	got := conversations(s, false, 0, restartAt, convs, &tiered)
	stop()
	s, stop = newSched(2, true, true) // a restart: the same directory
	got = append(got, conversations(s, false, restartAt, turns, convs, &after)...)
	stop()

	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("request %d: output %v with the tiers, %v with eight unlimited slots", i, got[i], want[i])
		}
	}
	if b := over.Load(); b != 0 {
		t.Errorf("the cache held %d bytes, over the budget of %d", b, budget)
	}
	with := tiered.evaluated + after.evaluated
	ratio := float64(plain.evaluated) / float64(with)
	t.Logf("prompt tokens evaluated: %d with eight unlimited slots; over two slots under a %d-byte budget: %d without the tiers, %d with them (%.2f× fewer; %d loaded, %d of them after a restart; %d evaluated after it; entries loaded: %d from RAM, %d from disk)",
		ref.evaluated, budget, plain.evaluated, with, ratio, tiered.loaded+after.loaded, after.loaded, after.evaluated, ramHits, diskHits)
	if ramHits == 0 || diskHits == 0 {
		t.Errorf("entries loaded: %d from RAM, %d from disk; want both tiers used", ramHits, diskHits)
	}
	if ratio < 5 {
		t.Errorf("the tiers cut prompt evaluation %.2f×, want at least 5×", ratio)
	}
	if after.loaded == 0 {
		t.Error("nothing was loaded after the restart")
	}
}
