package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// Eviction as the budget's last step (--cache-evict): a request whose
// context cannot fit the budget even at the bottom of the ladders is
// refused without it, and with it runs to its end, its middle pages
// dropped (sink pages and the recent window kept), the cache never over
// the budget between steps, and the slot's tokens matching what the cache
// holds (positions consistent: the slot's next request reuses its cache).
func TestEvictLastStep(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const P = 16
	k, v := cachepolicy.DefaultLadders()
	// kvtest-27m: a 16-token page of all layers is 64 KiB at f16, 20 KiB
	// at the bottom of the default ladders (q5_0 K, q4_0 V).
	const budget = 16*20<<10 + 64<<10
	ev := cachepolicy.Evict{Sinks: 32, Window: 128}
	prompt := e.Tok.Encode(strings.Repeat("The long story of the sea, the boats and the mountains goes on. ", 25), true, true)
	if len(prompt) < 250 {
		t.Fatalf("prompt of %d tokens", len(prompt))
	}
	run := func(pol *cachepolicy.Policy) (*engine.Result, []int, int64, error) {
		co := engine.DefaultCacheOptions()
		co.PageTokens = P
		s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 1024, Cache: co, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		defer s.Close()
		var over atomic.Int64
		stop, watched := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(watched)
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
		defer func() { close(stop); <-watched }()
		ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 200, Sample: greedy(), SlotID: 0, IgnoreEOS: true, CachePrompt: true})
		if err != nil {
			return nil, nil, 0, err
		}
		var res *engine.Result
		for ev := range ch {
			if ev.Err != nil {
				return nil, nil, 0, ev.Err
			}
			if ev.Done != nil {
				res = ev.Done
			}
		}
		var toks []int
		var held int
		s.Do(func(c *kvcache.Cache) error {
			held = c.Len(0)
			toks = append(toks, s.SlotTokens(0)...)
			return nil
		})
		if held != len(toks) {
			t.Errorf("the cache holds %d positions, the slot's token list %d", held, len(toks))
		}
		// The next turn continues the slot's (evicted) context: it reuses it.
		next := append(append([]int(nil), toks...), e.Tok.Encode(" And then?", false, true)...)
		ch, err = s.Submit(context.Background(), &engine.Request{Prompt: next, NPredict: 4, Sample: greedy(), SlotID: 0, IgnoreEOS: true, CachePrompt: true})
		if err != nil {
			t.Fatal(err)
		}
		for ev := range ch {
			if ev.Err != nil {
				return nil, nil, 0, ev.Err
			}
			if ev.Done != nil && ev.Done.CachedTokens < len(toks)-P {
				t.Errorf("the next turn reused %d of the %d cached positions", ev.Done.CachedTokens, len(toks))
			}
		}
		return res, toks, over.Load(), nil
	}

	_, _, _, err = run(&cachepolicy.Policy{LadderK: k, LadderV: v, Budget: budget})
	if !errors.Is(err, cachepolicy.ErrBudget) {
		t.Fatalf("without eviction: %v, want the budget refused", err)
	}
	res, toks, over, err := run(&cachepolicy.Policy{LadderK: k, LadderV: v, Budget: budget, Evict: ev})
	if err != nil {
		t.Fatal(err)
	}
	if over != 0 {
		t.Errorf("the cache held %d bytes, over the budget of %d", over, budget)
	}
	total := len(prompt) + len(res.Tokens) - 1 // the last token sampled is not in the cache
	if res.EvictedTokens == 0 || res.EvictedTokens%P != 0 || len(toks) != total-res.EvictedTokens {
		t.Errorf("%d tokens evicted (whole pages), %d left of %d", res.EvictedTokens, len(toks), total)
	}
	// The sinks are the prompt's first tokens, the rest its most recent.
	if !slicesEqual(toks[:ev.Sinks], prompt[:ev.Sinks]) {
		t.Error("the sink tokens were not kept")
	}
	t.Logf("%d prompt + %d generated tokens under a %d-byte budget: %d evicted, %d held", len(prompt), len(res.Tokens), budget, res.EvictedTokens, len(toks))
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
