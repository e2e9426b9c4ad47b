package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/testassets"
)

// Slots filled past the budget: the cache never exceeds it, every request
// completes (older pages are demoted instead), a request that cannot fit
// even at the lowest types is refused with a clear error, and the policy
// can be changed while streams run.
func TestBudgetNeverExceeded(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	k, v := cachepolicy.DefaultLadders()
	// kvtest-27m: 8 layers × (K+V) × 128 values; a 64-token page of f16
	// for all layers is 256 KiB. 4 slots × 600 tokens of f16 would need
	// ~9.4 MiB; give 4 MiB.
	const budget = 4 << 20
	pol := &cachepolicy.Policy{LadderK: k, LadderV: v, Budget: budget}
	co := engine.DefaultCacheOptions()
	co.PageTokens = 64
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 4, SlotCtx: 1024, Cache: co, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()

	var over atomic.Int64
	stop := make(chan struct{})
	watch := make(chan struct{})
	go func() { // sample the cache between steps
		defer close(watch)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Do(func(c *kvcache.Cache) error {
				if b := c.Bytes(); b > budget {
					over.Store(b)
				}
				return nil
			})
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := s.Submit(context.Background(), &engine.Request{
				Prompt:   e.Tok.Encode(fmt.Sprintf("Chapter %d. It was a bright cold day in April", i), true, true),
				NPredict: 560, Sample: greedy(), SlotID: -1, IgnoreEOS: true})
			if err != nil {
				errs <- err
				return
			}
			for ev := range ch {
				if ev.Err != nil {
					errs <- ev.Err
				}
				if ev.Done != nil && ev.Done.PredictedTokens != 560 {
					errs <- fmt.Errorf("ended after %d tokens", ev.Done.PredictedTokens)
				}
			}
		}()
	}
	// Change the policy at run time: a multistage rule on top of the budget.
	pol2 := *pol
	pol2.Hot = 128
	if err := s.SetPolicy(&pol2); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(stop)
	<-watch
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b := over.Load(); b != 0 {
		t.Errorf("cache reached %d bytes, over the budget of %d", b, budget)
	}
	st := s.Stats()
	t.Logf("demotions: budget %d, age %d; %d KiB freed", st.Policy.ByBudget, st.Policy.ByAge, st.Policy.BytesFreed>>10)
	if st.Policy.ByBudget == 0 {
		t.Error("the budget never demoted anything")
	}
	// A request that cannot fit even at the lowest types is refused.
	_, err = s.Submit(context.Background(), &engine.Request{Prompt: e.Tok.Encode("x", true, true), NPredict: -1, Sample: greedy(), SlotID: -1})
	if err == nil {
		pol3 := *pol
		pol3.Budget = 1 << 20
		s.SetPolicy(&pol3)
		_, err = s.Submit(context.Background(), &engine.Request{Prompt: e.Tok.Encode("x", true, true), NPredict: -1, Sample: greedy(), SlotID: -1})
	}
	if !errors.Is(err, cachepolicy.ErrBudget) {
		t.Errorf("oversized request: %v, want a budget error", err)
	}
}
