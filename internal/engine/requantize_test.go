package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

func ptype(t tensor.Type) *tensor.Type { return &t }

// f16 → f32 → f16 in the middle of a greedy generation is lossless: the
// tokens equal those of the same generation without requantization. The
// conversion runs between two requests of one conversation (the second
// continues the first's tokens from the cache).
func TestLosslessRequantizeMidGeneration(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	prompt := e.Tok.Encode("The history of the kernel", true, true)
	run := func(convert bool) []int {
		s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Cache: engine.DefaultCacheOptions()})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		defer s.Close()
		gen := func(p []int, n int) []int {
			ch, err := s.Submit(context.Background(), &engine.Request{Prompt: p, NPredict: n, Sample: greedy(), SlotID: 0, IgnoreEOS: true, CachePrompt: true})
			if err != nil {
				t.Fatal(err)
			}
			_, res := collect(t, ch)
			return append(append([]int(nil), p...), res.Tokens...)
		}
		toks := gen(prompt, 17)
		if convert {
			err := s.Do(func(c *kvcache.Cache) error {
				for _, to := range []tensor.Type{tensor.F32, tensor.F16} {
					tg := kvcache.Target{K: ptype(to), V: ptype(to)}
					steps, _, err := c.Plan(tg)
					if err != nil {
						return err
					}
					c.SetWriteTypes(tg)
					for _, st := range steps {
						c.ConvertPage(st)
					}
					if c.BytesByType()[to] != c.Bytes() {
						return fmt.Errorf("not all pages %s after conversion", to)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return gen(toks, 23)
	}
	a, b := run(false), run(true)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("tokens differ after f16→f32→f16:\n%v\n%v", a, b)
	}
}

// Four slots stream while requantize calls cycle f16 → q8_0 → q4_0 → f16:
// no request fails, every request completes, and the reports add up.
func TestRequantizeWhileStreaming(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 4, SlotCtx: 512, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &engine.Request{Prompt: e.Tok.Encode(fmt.Sprintf("Story number %d: once upon a time", i), true, true),
				NPredict: 160, Sample: greedy(), SlotID: -1, IgnoreEOS: true}
			ch, err := s.Submit(context.Background(), r)
			if err != nil {
				errs <- err
				return
			}
			n := 0
			for ev := range ch {
				if ev.Err != nil {
					errs <- ev.Err
					return
				}
				if ev.Done != nil && ev.Done.PredictedTokens != 160 {
					errs <- fmt.Errorf("request ended after %d tokens (%s)", ev.Done.PredictedTokens, ev.Done.StopType)
				}
				n++
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	cycle := []tensor.Type{tensor.Q8_0, tensor.Q4_0, tensor.F16}
	calls := 0
loop:
	for i := 0; ; i++ {
		select {
		case <-done:
			break loop
		default:
		}
		to := cycle[i%len(cycle)]
		rep, err := s.Requantize(kvcache.Target{K: ptype(to), V: ptype(to)}, false)
		if err != nil {
			t.Fatalf("requantize to %s: %v", to, err)
		}
		if rep.BytesBefore-rep.BytesAfter != rep.BytesFreed {
			t.Errorf("report does not add up: %+v", rep)
		}
		calls++
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d requantize calls while 4 slots streamed 160 tokens each", calls)
	if calls < 3 {
		t.Errorf("only %d requantize calls completed during streaming", calls)
	}
}

// A second requantize while one runs is refused; a dry run changes nothing;
// bad targets are errors.
func TestRequantizeAPI(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 2, SlotCtx: 1024, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	ch, _ := s.Submit(context.Background(), &engine.Request{Prompt: e.Tok.Encode("Once upon a time", true, true), NPredict: 300, Sample: greedy(), SlotID: 0, IgnoreEOS: true, CachePrompt: true})
	for range ch {
	}
	dry, err := s.Requantize(kvcache.Target{K: ptype(tensor.Q4_0), V: ptype(tensor.Q4_0)}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.PagesConverted != 2*8*2 || dry.BytesAfter*64 != dry.BytesBefore*18 {
		t.Errorf("dry run report %+v", dry)
	}
	real, err := s.Requantize(kvcache.Target{K: ptype(tensor.Q4_0), V: ptype(tensor.Q4_0)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if real.BytesAfter != dry.BytesAfter || real.PagesConverted != dry.PagesConverted || real.TokensConverted != dry.TokensConverted {
		t.Errorf("dry run %+v differs from the real run %+v", dry, real)
	}
	if _, err := s.Requantize(kvcache.Target{Layers: []int{9}}, false); err == nil {
		t.Error("layer 9 of 8 accepted")
	}
	if _, err := s.Requantize(kvcache.Target{K: ptype(tensor.Q4_K)}, false); err == nil {
		t.Error("q4_K accepted as a cache type")
	}
}
