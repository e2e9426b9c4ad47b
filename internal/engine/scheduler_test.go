package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/testassets"
)

func greedy() sample.Params {
	p := sample.DefaultParams()
	p.Temperature = 0
	return p
}

func collect(t *testing.T, ch <-chan engine.Event) (string, *engine.Result) {
	t.Helper()
	text := ""
	for ev := range ch {
		if ev.Err != nil {
			t.Fatalf("request failed: %v", ev.Err)
		}
		text += ev.Text
		if ev.Done != nil {
			return text, ev.Done
		}
	}
	t.Fatal("stream closed without a result")
	return "", nil
}

// Requests run concurrently in slots produce exactly the tokens they
// produce alone (batch invariance), and prompt prefixes are reused: with
// f16 weights and with quantized weights (repacked at load where the
// kernels read them packed: up to 4 slots' tokens share one pass).
func TestSchedulerConcurrentEqualsSequential(t *testing.T) {
	for _, m := range []string{"models/kvtest-27m-f16.gguf", "models/llamacpp-quantized/kvtest-27m-Q8_0.gguf", "models/llamacpp-quantized/kvtest-27m-Q4_K_M.gguf"} {
		t.Run(filepath.Base(m), func(t *testing.T) { schedulerConcurrentEqualsSequential(t, m) })
	}
}

func schedulerConcurrentEqualsSequential(t *testing.T, model string) {
	e, err := engine.Load(testassets.Path(t, model), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 4, SlotCtx: 512, PrefillChunk: 7, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	prompts := []string{
		"Once upon a time", "The quick brown fox", "def main():\n    ", "In the beginning",
		"It was a dark and stormy night; the rain fell in torrents", "Hello", "1, 2, 3, 4,", "The Linux kernel",
	}
	req := func(p string) *engine.Request {
		return &engine.Request{Prompt: e.Tok.Encode(p, true, true), NPredict: 24, Sample: greedy(), SlotID: -1}
	}
	alone := map[string][]int{}
	for _, p := range prompts {
		ch, err := s.Submit(context.Background(), req(p))
		if err != nil {
			t.Fatal(err)
		}
		_, res := collect(t, ch)
		alone[p] = res.Tokens
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(prompts))
	for _, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := s.Submit(context.Background(), req(p))
			if err != nil {
				errs <- err
				return
			}
			var res *engine.Result
			for ev := range ch {
				if ev.Err != nil {
					errs <- ev.Err
					return
				}
				if ev.Done != nil {
					res = ev.Done
				}
			}
			if fmt.Sprint(res.Tokens) != fmt.Sprint(alone[p]) {
				errs <- fmt.Errorf("%q: concurrent %v != alone %v", p, res.Tokens, alone[p])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Prefix reuse: the same prompt again with cache_prompt reuses all
	// but the last token.
	r := req(prompts[0])
	r.CachePrompt = true
	ch, _ := s.Submit(context.Background(), r)
	collect(t, ch)
	ch, _ = s.Submit(context.Background(), r)
	_, res := collect(t, ch)
	if res.CachedTokens != len(r.Prompt)-1 || res.EvaluatedTokens != 1 {
		t.Errorf("cache_prompt: cached %d evaluated %d of %d", res.CachedTokens, res.EvaluatedTokens, len(r.Prompt))
	}
}

// Stop strings end generation, are excluded from the text, and partial
// matches are held back while streaming.
func TestSchedulerStopAndCancel(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 2, SlotCtx: 256, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	// Reference continuation: "..., the world is a great way to get to know the world's"
	ch, _ := s.Submit(context.Background(), &engine.Request{Prompt: e.Tok.Encode("Once upon a time", true, true), NPredict: 20, Sample: greedy(), SlotID: -1, Stop: []string{"great way"}})
	text, res := collect(t, ch)
	if res.StopType != "word" || res.StoppingWord != "great way" || text != ", the world is a " || res.Text != text {
		t.Errorf("stop: type %q word %q streamed %q result %q", res.StopType, res.StoppingWord, text, res.Text)
	}
	// Cancellation frees the slot.
	ctx, cancel := context.WithCancel(context.Background())
	ch, _ = s.Submit(ctx, &engine.Request{Prompt: e.Tok.Encode("Once upon a time", true, true), NPredict: -1, Sample: greedy(), SlotID: 0})
	<-ch
	cancel()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				goto done
			}
			_ = ev
		case <-deadline:
			t.Fatal("cancelled request did not end")
		}
	}
done:
	for _, si := range s.Slots() {
		if si.Processing {
			t.Errorf("slot %d still busy after cancel", si.ID)
		}
	}
}
