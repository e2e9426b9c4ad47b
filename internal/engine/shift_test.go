package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/testassets"
)

// With context shift, a request generates three times its slot's context
// without an error: the slot never holds more than its context, cache bytes
// stay within the slot's capacity, and text keeps coming. The same holds on
// rotated q4_0 pages.
func TestContextShiftGeneratesPastTheContext(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, typ := range []string{"f16", "q4_0"} {
		t.Run(typ, func(t *testing.T) {
			const ctx = 512
			co := engine.DefaultCacheOptions()
			co.TypeK, co.TypeV, co.PageTokens = typ, typ, 64
			s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: ctx, ContextShift: true, Cache: co})
			if err != nil {
				t.Fatal(err)
			}
			s.Start()
			defer s.Close()
			p := sample.DefaultParams()
			p.Seed = 42
			prompt := e.Tok.Encode("Once upon a time, in a small village by the sea, there lived", true, true)
			ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 3 * ctx, Sample: p,
				SlotID: -1, IgnoreEOS: true, NKeep: -1})
			if err != nil {
				t.Fatal(err)
			}
			type out struct {
				text string
				res  *engine.Result
			}
			got := make(chan out, 1)
			go func() { text, res := collect(t, ch); got <- out{text, res} }()
			var capacity, most int64
			for done := false; !done; {
				select {
				case o := <-got:
					done = true
					if o.res.PredictedTokens != 3*ctx {
						t.Fatalf("generated %d tokens, want %d (stop %q)", o.res.PredictedTokens, 3*ctx, o.res.StopType)
					}
					if o.res.ContextShifts < 3 {
						t.Fatalf("%d context shifts for %d tokens in a %d-token slot", o.res.ContextShifts, 3*ctx, ctx)
					}
					if len(o.text) < ctx {
						t.Fatalf("only %d bytes of text for %d tokens", len(o.text), 3*ctx)
					}
					t.Logf("%s: %d tokens, %d shifts, at most %d cache bytes (capacity %d)", typ, o.res.PredictedTokens,
						o.res.ContextShifts, most, capacity)
				case <-time.After(2 * time.Millisecond):
					s.Do(func(c *kvcache.Cache) error {
						capacity, most = c.Capacity(), max(most, c.Bytes())
						if n := c.Len(0); n > ctx {
							t.Errorf("slot holds %d positions, more than its context %d", n, ctx)
						}
						return nil
					})
				}
			}
			if most > capacity {
				t.Fatalf("cache held %d bytes, over its capacity %d", most, capacity)
			}
		})
	}
}

// Without context shift a prompt longer than the slot is refused; with it,
// the prompt is truncated (its start and end kept) and the result says so.
func TestPromptTruncation(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	long := make([]int, 700)
	for i := range long {
		long[i] = 100 + i%50
	}
	for _, shift := range []bool{false, true} {
		s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 256, ContextShift: shift, Cache: engine.DefaultCacheOptions()})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		r := &engine.Request{Prompt: append([]int(nil), long...), NPredict: 4, Sample: greedy(), SlotID: -1, NKeep: 10}
		ch, err := s.Submit(context.Background(), r)
		if !shift {
			if err == nil {
				t.Fatal("prompt longer than the slot accepted without context shift")
			}
			s.Close()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_, res := collect(t, ch)
		if !res.Truncated || res.PromptTokens >= 256 || res.PromptTokens < 128 {
			t.Fatalf("truncated %v to %d tokens", res.Truncated, res.PromptTokens)
		}
		if r.Prompt[0] != long[0] || r.Prompt[len(r.Prompt)-1] != long[len(long)-1] {
			t.Fatal("truncation did not keep the prompt's start and end")
		}
		s.Close()
	}
}
